/* cs-window-private.h: CsWindow's instance, shared by cs-window*.c and the UI tests. */
#pragma once

#include "engine/cs-pipeline.h"
#include "engine/cs-worker.h"
#include "io/cs-annotation.h"
#include "cs-case-loader.h"
#include "cs-curve-view.h"
#include "cs-slice-view.h"
#include "cs-window.h"

G_BEGIN_DECLS

typedef enum
{
  CS_CASE_NOT_RUN,
  CS_CASE_QUEUED,
  CS_CASE_RUNNING,
  CS_CASE_NORMAL,
  CS_CASE_SUSPICIOUS,
  CS_CASE_FAILED,
} CsCaseState;

/* What the window keeps of one case between visits: the detection and its layers. */
typedef struct
{
  gboolean     running;
  guint        job_id;
  CsDetection *detection;     /* NULL until a detection finished */
  char        *error;         /* why the last detection failed, or NULL */
  CsSagittal  *layers[4];     /* anomaly, EU, AU, mean on the display grid, made once */
} CsCaseResult;

/* The model the worker loads once, shared by detection jobs (used in the worker thread). */
typedef struct
{
  GMutex           lock;
  gboolean         tried;
  CsPipelineModel *model;
  char            *reason;    /* why there is no model, or NULL */
} CsModelSlot;

struct _CsWindow
{
  AdwApplicationWindow  parent_instance;

  GSettings            *settings;        /* NULL when the schema is not installed */

  /* Template children */
  AdwWindowTitle       *window_title;
  GtkLabel             *backend_label;
  GtkStack             *stack;
  AdwStatusPage        *empty_page;
  AdwStatusPage        *loading_page;
  GtkSpinner           *loading_spinner;
  AdwStatusPage        *error_page;
  CsSliceView          *slice_view;
  CsCurveView          *curve_view;
  GtkWidget            *worklist_box;
  GtkListBox           *worklist;
  GtkLabel             *worklist_progress;
  GtkDropDown          *worklist_filter;   /* CsWorklistFilter order */
  GtkToggleButton      *worklist_sort;     /* by patient score */
  GPtrArray            *worklist_sidecars; /* CsSidecar* per case (NULL: none), as read */
  GtkRevealer          *progress_revealer;
  GtkProgressBar       *progress_bar;
  GtkLabel             *progress_label;
  GtkLabel             *verdict_label;
  GtkLabel             *score_label;
  GtkLabel             *detector_label;
  GtkGrid              *segment_grid;
  GtkLabel             *detection_error_label;
  GtkGrid              *overlay_grid;

  CsWindowState         state;
  GCancellable         *load_cancellable; /* the load in flight, replaced by a newer open */
  guint                 loading_page_timeout;
  gboolean              keep_view;        /* the load in flight keeps window/level and zoom */
  CsLoadedCase         *loaded;           /* the case on screen; its slice is the view's */
  int                   slice;            /* the sagittal slice on screen */
  GtkFileChooserNative *file_chooser;

  GPtrArray            *cases;            /* the worklist's cases (CsCase*), or NULL */
  GHashTable           *results;          /* image path -> CsCaseResult* */
  gboolean              selecting;        /* the worklist selection is being set by code */

  CsWorker             *worker;
  CsModelSlot          *model_slot;
  guint                 running_job;      /* the detection the progress bar shows, 0: none */

  GtkLabel             *segment_names[CS_PIPELINE_N_SEGMENTS];
  GtkLevelBar          *segment_bars[CS_PIPELINE_N_SEGMENTS];
  GtkLabel             *segment_calls[CS_PIPELINE_N_SEGMENTS];
  GtkRange             *opacity_scales[CS_N_OVERLAYS];
  GtkRange             *threshold_scales[CS_N_OVERLAYS];

  /* Annotation of the case on screen (cs-window-annotation.c) */
  CsAnnotation         *annotation;       /* NULL when no case is shown */
  int                   selected_segment; /* 0..5: what N/H/U/Delete label */
  GtkLabel             *save_label;
  GtkWidget            *save_retry;
  GtkRevealer          *recovery_revealer;
  GtkLabel             *recovery_label;
  GtkMenuButton        *segment_labels[CS_PIPELINE_N_SEGMENTS];
  GtkToggleButton      *review_pass;
  GtkToggleButton      *review_fail;
  GtkCheckButton       *artifact_check;
  GtkEntry             *reason_entry;
  GtkEntry             *note_entry;
  GtkSpinButton        *centerline_width; /* mm, for the centerline tool */
  gboolean              drawing_centerline; /* clicks add centerline points (key C) */
  gboolean              syncing_flags;    /* the flag widgets are being set from the document */
  gboolean              typing;           /* a text field has the focus: no one-key actions */
  CsSegment             disc_segments[CS_N_SEGMENTS]; /* from the document's discs */
  gboolean              have_disc_segments;
};

void          cs_window_add_actions         (CsWindow   *self);
void          cs_window_remember_folder     (CsWindow   *self,
                                             GFile      *file);
/* Detection of the case on screen in the engine worker; returns the job id, 0 if none. */
guint         cs_window_detect              (CsWindow   *self);
void          cs_window_cancel_detection    (CsWindow   *self);
/* Moves DELTA cases along the worklist (keeping window/level, zoom, overlays). */
void          cs_window_step_case           (CsWindow   *self,
                                             int         delta);
void          cs_window_step_slice          (CsWindow   *self,
                                             int         delta);
CsCaseState   cs_window_get_case_state      (CsWindow   *self,
                                             guint       index);
/* The threshold the verdict uses for DETECTOR's patient and segment scores. */
double        cs_window_get_threshold       (CsWindow   *self,
                                             CsDetectorKind detector);
/* The detection of the case on screen, or NULL. */
const CsDetection *cs_window_get_detection  (CsWindow   *self);
void          cs_window_overlays_to_settings (CsWindow  *self);

/* cs-window-annotation.c: the annotation document of the case on screen. */
void          cs_window_annotation_init     (CsWindow   *self);
/* Opens the loaded case's document (its sidecar), inserts its actions as "annotation". */
void          cs_window_annotation_open     (CsWindow   *self);
/* Writes what is not on disk yet and lets the document go (case change, close). */
gboolean      cs_window_annotation_close    (CsWindow   *self,
                                             GError    **error);
/* The model's calls (a segment score at or above the threshold: hyperintense) to show. */
void          cs_window_annotation_set_detection (CsWindow          *self,
                                                  const CsDetection *detection,
                                                  double             threshold);
/* Disc markers from the document's discs; REFRESH also redraws spans, curve and scores. */
void          cs_window_annotation_show_discs (CsWindow *self,
                                               gboolean  refresh);
/* DETECTION's segments, with spans from the annotator's discs and scores from the curve
 * when the annotator placed, moved or deleted discs. FALSE: no segments. */
gboolean      cs_window_effective_segments  (CsWindow           *self,
                                             const CsDetection  *detection,
                                             CsDetectionSegment  out[CS_PIPELINE_N_SEGMENTS]);
/* The worklist after labels or scores changed: progress, filter, order. */
void          cs_window_worklist_changed    (CsWindow   *self);
/* Before the case on screen's document goes: its labels stay in the worklist. */
void          cs_window_worklist_keep_labels (CsWindow  *self);
/* Sidecars of every case read again (after an import) and the worklist refilled. */
void          cs_window_worklist_reload     (CsWindow   *self);

/* cs-window-export.c: export (dataset CSV or JSON of the worklist's cases with the model's
 * scores; the SCT disc labels of the case on screen into FOLDER, returns the file) and the
 * dataset CSV imported into the cases it names (the number of cases changed, -1 on error). */
void          cs_window_export_add_actions  (CsWindow   *self);
gboolean      cs_window_export_dataset      (CsWindow   *self,
                                             const char *path,
                                             gboolean    json,
                                             GError    **error);
char         *cs_window_export_discs        (CsWindow   *self,
                                             const char *folder,
                                             GError    **error);
int           cs_window_import_labels       (CsWindow   *self,
                                             const char *path,
                                             GError    **error);
/* The detection's layers, curve and panel again (after the discs changed). */
void          cs_window_show_detection      (CsWindow   *self);
/* "labels=NH-U-- review=P artifact=1 note=TEXT discs=3@i/j/k,...": the kill test's form. */
char         *cs_window_annotation_describe (CsWindow   *self);

G_END_DECLS
