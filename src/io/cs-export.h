/* cs-export.h: annotations out of Cordscope, for spreadsheets, SCT and ITK-SNAP, and the
 * dataset CSV back in. No GTK here.
 *
 * Dataset CSV (RFC 4180: comma separated; a field with a comma, quote, CR, LF or outer
 * space is quoted, quotes doubled; lines end in LF, CRLF is read too, and so is a UTF-8
 * byte-order mark), one row per case and segment, this header:
 *   case,segment,label,annotator,time,model_score,review,artifact,reason,note
 * segment C2-3..C7-T1; label normal | hyperintense | uncertain | unset; annotator and time
 * (ISO 8601) empty when unset; model_score a number or empty; review pass | fail | unset;
 * artifact true | false; reason and note free text (the case's, repeated on its rows).
 * Import gives back the same labels: rows may come in any order, a case may list only
 * some segments (the rest are unset), and errors (CS_IO_ERROR_FORMAT) name the file and
 * line: a wrong header, a wrong number of fields, an unterminated quote, an unknown
 * segment or label, a bad time or score, a segment twice, case fields that differ
 * between rows of one case.
 *
 * SCT disc labels: NAME_labels-disc.nii.gz on the case's own voxel grid (its shape and
 * affine), uint8, zero except one voxel per disc (the disc's point rounded to the nearest
 * voxel) holding the disc value (3..8 for the six segments' discs; any other labelled
 * disc keeps its value too).
 *
 * JSON dataset: { "format": "cordscope-dataset", "version": 1, "exported": TIME,
 *   "cases": [ { ...the case's sidecar (schema v1)..., "model_scores": { "C2-3": 0.4 |
 *   null, ... }, "centerline_width": mm, "effective_discs": [ { "value", "name",
 *   "voxel", "source" }, ... ] (the disc file under the annotator's) or
 *   "effective_discs_error": "why the disc file could not be read"
 *   }, ... ] } */
#pragma once

#include <glib.h>

#include "io/cs-case.h"
#include "io/cs-sidecar.h"

G_BEGIN_DECLS

#define CS_EXPORT_CSV_HEADER \
  "case,segment,label,annotator,time,model_score,review,artifact,reason,note"

/* One case's row group: its labels (case_name, segments, flags, note) and model scores. */
typedef struct
{
  CsSidecar *sidecar;
  double model_score[CS_N_SEGMENTS];   /* NAN: no score */
  GArray *discs;                       /* the case's effective discs (CsDisc), or NULL */
  char *discs_error;                   /* why discs is NULL (an unreadable disc file) */
  double centerline_width;             /* mm; 0 when none */
} CsExportCase;

/* A case with an empty sidecar named CASE_NAME and no scores. */
CsExportCase *cs_export_case_new     (const char *case_name);
/* Takes SIDECAR; SCORES may be NULL. */
CsExportCase *cs_export_case_new_full (CsSidecar *sidecar, const double *scores);
void          cs_export_case_free    (CsExportCase *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsExportCase, cs_export_case_free)

/* CsExportCase* for every case (CsCase*) in CASES: its sidecar when it has one (errors as
 * cs_annotation_open()), else an empty one; its effective discs (the disc file under the
 * annotator's, cs_case_effective_discs(); an unreadable disc file leaves them out, with
 * discs_error saying why, rather than stopping the export of the labels) and centerline
 * width; no scores. */
GPtrArray    *cs_export_collect      (GPtrArray *cases, GError **error);

/* The CSV text of CASES (CsExportCase*), rows in the given case order, segments in order. */
char         *cs_export_csv_text     (GPtrArray *cases);
/* Writes it to PATH atomically (temp + fsync + rename). */
gboolean      cs_export_csv          (GPtrArray *cases, const char *path, GError **error);
/* Parses CSV text; SOURCE names it in errors. CsExportCase* in the order cases first
 * appear; the sidecars' image, created and modified fields are empty. */
GPtrArray    *cs_import_csv_text     (const char *text, gssize length, const char *source,
                                      GError **error);
GPtrArray    *cs_import_csv          (const char *path, GError **error);

/* Writes DISCS (CsDisc) as an SCT disc-label file on IMAGE's grid to PATH. Errors
 * (CS_IO_ERROR_GEOMETRY, naming PATH and the disc) when a disc lies outside the grid or
 * two discs fall on the same voxel; nothing is written then. */
gboolean      cs_export_disc_labels  (const CsVolume *image, const GArray *discs,
                                      const char *path, GError **error);
/* "DIR/NAME_labels-disc.nii.gz". */
char         *cs_export_disc_labels_path (const char *dir, const char *case_name);

char         *cs_export_json_text    (GPtrArray *cases);
gboolean      cs_export_json         (GPtrArray *cases, const char *path, GError **error);

G_END_DECLS
