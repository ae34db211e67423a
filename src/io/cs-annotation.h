/* cs-annotation.h: one case's annotation document over its sidecar (NAME.cordscope.json):
 * every annotation action as an undoable command, autosave after every change, and a
 * recovery file when the sidecar cannot be written. GLib/GIO only (no GTK): the window
 * drives it through the GActionGroup below and shows its properties.
 *
 * Commands. Each action is one command holding the state of the parts it touches before
 * and after (its inverse is restoring the before state); undo and redo move commands
 * between two stacks, a new command clears the redo stack. An action that changes
 * nothing (the same label again, the same note) records no command and saves nothing.
 * A segment label carries the annotator's name and the ISO 8601 UTC time of the action;
 * undo gives back the previous label with its previous annotator and time.
 *
 * Discs. The document holds the annotator's discs (source "manual") over the case's disc
 * file (cs_annotation_set_file_discs); deleting a disc that the file has is remembered,
 * so the effective discs (cs_annotation_dup_discs) are file discs, minus deleted ones,
 * with the annotator's replacing or added.
 *
 * Saving. After every change (with autosave on, the default) the sidecar is written
 * atomically (temp file + fsync + rename, the previous file kept as PATH.bak): before the
 * action returns (~10 ms of fsyncs here), or on a worker thread with
 * cs_annotation_set_save_in_background() (what the window uses). When that fails (read-only
 * folder, full disk...), the state becomes FAILED with the error kept, the labels stay in
 * memory and are also written atomically to the recovery file
 * g_get_user_data_dir()/cordscope/recovery/NAME-HASH.cordscope.json; the sidecar is
 * tried again on the next change or on the save action. Once the sidecar is written
 * again, the recovery file this document wrote is removed.
 *
 * Opening. A recovery file newer than the sidecar (or with no sidecar) is reported by
 * cs_annotation_get_pending_recovery(); restore (one undoable command) or discard it.
 * Temp files that a killed writer left beside the sidecar (".NAME.cordscope.json.XXXXXX",
 * older than 10 s) are removed.
 *
 * Extensions to sidecar schema v1 (readers of v1 ignore unknown keys):
 *   "centerline_width": 6.0        the centerline tool's width in mm (0 = unset)
 *   "discs_removed": [5, ...]      disc values the annotator deleted
 * and, in a recovery file only, "recovery_for": "/path/NAME.cordscope.json".
 *
 * Actions (cs_annotation_get_action_group(); insert it as e.g. "annotation"):
 *   set-label "(is)"           segment 0..5, "normal" | "hyperintense" | "uncertain" | "unset"
 *   clear-label "i"            segment 0..5
 *   place-disc "(iddd)"        disc value 1..25, voxel i, j, k (placing and moving)
 *   delete-disc "i"            disc value
 *   set-flags "(sbs)"          review "pass" | "fail" | "unset", artifact, reason
 *   set-note "s"
 *   set-centerline "(a(ddd)d)" voxel points superior to inferior, width in mm
 *   accept-model               the model's calls on every unlabelled segment (one command)
 *   undo, redo                 enabled only when there is something to undo / redo
 *   save                       retry the sidecar now (in the background when saving there)
 *   restore-recovery, discard-recovery   enabled while a recovery file is pending
 * An action with a parameter out of range does nothing (and warns). */
#pragma once

#include <gio/gio.h>

#include "io/cs-case.h"
#include "io/cs-sidecar.h"

G_BEGIN_DECLS

typedef enum
{
  CS_SAVE_STATE_SAVED,    /* the sidecar on disk holds every change */
  CS_SAVE_STATE_DIRTY,    /* changes not yet written (autosave off, or about to be) */
  CS_SAVE_STATE_FAILED,   /* the last write failed: see last-error; kept in recovery */
} CsSaveState;

/* Which parts of the document a change touched (the "changed" signal's argument). */
typedef enum
{
  CS_ANNOTATION_PART_SEGMENTS   = 1 << 0,
  CS_ANNOTATION_PART_DISCS      = 1 << 1,
  CS_ANNOTATION_PART_FLAGS      = 1 << 2,
  CS_ANNOTATION_PART_NOTE       = 1 << 3,
  CS_ANNOTATION_PART_CENTERLINE = 1 << 4,
  CS_ANNOTATION_PART_ALL        = (1 << 5) - 1,
} CsAnnotationPart;

#define CS_TYPE_ANNOTATION (cs_annotation_get_type ())
G_DECLARE_FINAL_TYPE (CsAnnotation, cs_annotation, CS, ANNOTATION, GObject)

/* Opens SIDECAR_PATH when it exists (errors as cs_sidecar_load(), plus the path of a
 * backup when there is one), else starts an empty document that is first written on the
 * first change. CASE_NAME and IMAGE_FILE fill a new sidecar. */
CsAnnotation *cs_annotation_open            (const char *sidecar_path, const char *case_name,
                                             const char *image_file, GError **error);
/* The same for a discovered case (its sidecar_target, name and image file). */
CsAnnotation *cs_annotation_open_case       (const CsCase *c, GError **error);

const char   *cs_annotation_get_path        (CsAnnotation *self);
/* The document's state; read only (change it through the commands). */
const CsSidecar *cs_annotation_get_sidecar  (CsAnnotation *self);

/* Who is annotating: stamped on every later change. */
void          cs_annotation_set_annotator   (CsAnnotation *self, const char *annotator);
const char   *cs_annotation_get_annotator   (CsAnnotation *self);

/* Discs (CsDisc) read from the case's disc file, under the annotator's; may be NULL. */
void          cs_annotation_set_file_discs  (CsAnnotation *self, const GArray *discs);
/* Effective discs (CsDisc, sorted by value), a new array. */
GArray       *cs_annotation_dup_discs       (CsAnnotation *self);
/* TRUE when the annotator deleted disc VALUE. */
gboolean      cs_annotation_disc_removed    (CsAnnotation *self, int value);
double        cs_annotation_get_centerline_width (CsAnnotation *self);

/* The model's call and score per segment, shown, not a label until accepted; CALLS and
 * SCORES may be NULL (no call: CS_SEGMENT_LABEL_UNSET; no score: NAN). */
void          cs_annotation_set_model_calls (CsAnnotation *self, const CsSegmentLabel *calls,
                                             const double *scores);
CsSegmentLabel cs_annotation_get_model_call (CsAnnotation *self, int segment);
double        cs_annotation_get_model_score (CsAnnotation *self, int segment);

/* Commands: each returns TRUE when it changed the document (one undo step). */
gboolean      cs_annotation_set_segment_label (CsAnnotation *self, int segment,
                                               CsSegmentLabel label);
gboolean      cs_annotation_clear_segment_label (CsAnnotation *self, int segment);
/* Places or moves disc VALUE (1..25) to VOXEL (source manual). */
gboolean      cs_annotation_place_disc      (CsAnnotation *self, int value,
                                             const double voxel[3]);
gboolean      cs_annotation_delete_disc     (CsAnnotation *self, int value);
gboolean      cs_annotation_set_flags       (CsAnnotation *self, CsReview review,
                                             gboolean artifact, const char *reason);
gboolean      cs_annotation_set_note        (CsAnnotation *self, const char *note);
/* N_POINTS voxel points (superior to inferior) and the tool's width in mm (> 0, or 0
 * with no points). */
gboolean      cs_annotation_set_centerline  (CsAnnotation *self,
                                             const CsCenterlinePoint *points, guint n_points,
                                             double width_mm);
/* The model's calls on every unlabelled segment that has one; labelled segments keep the
 * annotator's label. One command. */
gboolean      cs_annotation_accept_model_calls (CsAnnotation *self);

gboolean      cs_annotation_can_undo        (CsAnnotation *self);
gboolean      cs_annotation_can_redo        (CsAnnotation *self);
gboolean      cs_annotation_undo            (CsAnnotation *self);
gboolean      cs_annotation_redo            (CsAnnotation *self);
/* "Label C3-4 hyperintense", ... or NULL. */
const char   *cs_annotation_get_undo_label  (CsAnnotation *self);
const char   *cs_annotation_get_redo_label  (CsAnnotation *self);

/* Autosave after every change (default TRUE). */
void          cs_annotation_set_autosave    (CsAnnotation *self, gboolean autosave);
/* Autosave writes on a worker thread (what the window wants: an action then costs a
 * fraction of a millisecond on the main thread). The save state is "dirty" until the
 * newest change is written, then "saved" or "failed", delivered on the thread-default
 * main context of the caller of this function, which must run. Writes keep their order;
 * a queued older text is dropped when a newer one is queued. Default FALSE: autosave
 * writes before the action returns. */
void          cs_annotation_set_save_in_background (CsAnnotation *self, gboolean background);
/* Writes the sidecar now (see the top of the file); on failure also the recovery file.
 * Waits for background writes first, so an older text never lands after this one. */
gboolean      cs_annotation_save            (CsAnnotation *self, GError **error);
/* Writes the sidecar now in the background (when saving there), else as
 * cs_annotation_save(); the outcome is the save state. What the "save" action does. */
void          cs_annotation_request_save    (CsAnnotation *self);
/* Waits for background writes and writes whatever is not on disk yet: call it before
 * the document goes (closing the case or the window). TRUE when all is on disk. */
gboolean      cs_annotation_flush           (CsAnnotation *self, GError **error);
CsSaveState   cs_annotation_get_save_state  (CsAnnotation *self);
/* The last failed save's message (names the file and the reason), or NULL. */
const char   *cs_annotation_get_last_error  (CsAnnotation *self);
/* Successful sidecar writes since open. */
guint         cs_annotation_get_save_count  (CsAnnotation *self);

/* Where this document's recovery file lives. */
const char   *cs_annotation_get_recovery_path (CsAnnotation *self);
char         *cs_annotation_recovery_path_for (const char *sidecar_path);
/* A readable recovery file newer than the sidecar, found at open and not yet restored or
 * discarded; else NULL. */
const char   *cs_annotation_get_pending_recovery (CsAnnotation *self);
gboolean      cs_annotation_restore_recovery (CsAnnotation *self, GError **error);
gboolean      cs_annotation_discard_recovery (CsAnnotation *self, GError **error);

/* The text written to the sidecar: schema v1 plus the extensions above. */
char         *cs_annotation_to_json         (CsAnnotation *self);

GActionGroup *cs_annotation_get_action_group (CsAnnotation *self);

const char   *cs_save_state_to_string       (CsSaveState state);

/* The disc the annotator is expected to place next (shown at the cursor): the lowest of
 * 3..8 (C2-3 .. C7-T1) missing from the effective discs, or 0 when all six are there. */
int           cs_annotation_next_disc       (CsAnnotation *self);

/* Labels read from elsewhere (an imported CSV row group, another annotator's file): the
 * segments, flags and note of LABELS become the document's, as one command (segments
 * keep LABELS' annotator and time). TRUE when that changed anything. */
gboolean      cs_annotation_import_labels   (CsAnnotation *self, const CsSidecar *labels);

/* ---- a case's labels for detection and export (no document needed) --------------- */

/* The case's discs: its disc file (when it has one) under the annotator's discs from its
 * sidecar, the ones the annotator deleted left out. IMAGE (may be NULL) checks the disc
 * file's grid. Errors name the file. */
GArray       *cs_case_effective_discs       (const CsCase *c, const CsVolume *image,
                                             GError **error);
/* The cord ROI drawn with the centerline tool, from the case's sidecar, refined by the
 * image, on IMAGE's grid: what detection uses as `_seg` when the case has none. NULL and
 * CS_IO_ERROR_GEOMETRY (naming the sidecar) when no centerline was drawn. */
CsVolume     *cs_case_centerline_mask       (const CsCase *c, const CsVolume *image,
                                             GError **error);

/* ---- worklist: progress, filters and order over many cases (no widgets) ---------- */

typedef enum
{
  CS_WORKLIST_ALL,
  CS_WORKLIST_UNLABELLED,  /* fewer than six segments labelled */
  CS_WORKLIST_DISAGREES,   /* a segment labelled normal where the model calls it
                            * hyperintense, or the other way round */
  CS_WORKLIST_FLAGGED,     /* review "fail" or an artifact */
} CsWorklistFilter;

typedef struct
{
  const CsSidecar *sidecar;                    /* NULL: nothing labelled yet */
  CsSegmentLabel model_calls[CS_N_SEGMENTS];   /* UNSET: no call */
  double patient_score;                        /* NAN: not scored */
} CsWorklistItem;

/* Segments of S with a label (0 for NULL). */
guint         cs_sidecar_n_labelled         (const CsSidecar *s);
gboolean      cs_worklist_item_matches      (const CsWorklistItem *item, CsWorklistFilter filter);
/* Items whose six segments are all labelled: the "n" of "n of N labelled". */
guint         cs_worklist_n_complete        (const CsWorklistItem *items, guint n_items);
/* Indices (guint) of the items that pass FILTER: by patient score when BY_SCORE (highest
 * first, unscored last, ties in list order), else in list order. */
GArray       *cs_worklist_order             (const CsWorklistItem *items, guint n_items,
                                             CsWorklistFilter filter, gboolean by_score);

G_END_DECLS
