/* cs-pipeline.h: U2AD end to end on cases, the library calls the app and cordscope-cli
 * share (DESIGN.md "U2AD"): detection of one case, adaptation of a model on a set of
 * cases, cross-validated evaluation.
 *
 * Threads: no global state and no GTK. Every call may run on a worker thread; progress
 * callbacks are called on the calling thread (the app coalesces them onto its main
 * context). A CsPipelineModel may be shared between threads: its forward passes are
 * serialised by its own lock. Every long call takes a GCancellable and then fails with
 * G_IO_ERROR_CANCELLED.
 *
 * Coordinates: the engine sees one sagittal slice of the case resampled onto a square
 * grid (io/cs-slice2d.h); "grid rows" are that grid's rows (0 = most superior), "display
 * rows" those of the sagittal display slice (cs_volume_extract_sagittal), and the
 * volumes are in the case's own voxel grid. */
#pragma once

#include <gio/gio.h>

#include "io/cs-case.h"
#include "io/cs-slice2d.h"
#include "io/cs-volume.h"
#include "engine/cs-metrics.h"

G_BEGIN_DECLS

#define CS_PIPELINE_N_SEGMENTS 6

typedef enum
{
  CS_DETECTOR_U2AD,    /* AU of the (adapted) masked autoencoder, Monte-Carlo K samples */
  CS_DETECTOR_ZSCORE,  /* baseline: z-score of intensity inside the ROI, no model */
} CsDetectorKind;

typedef enum
{
  CS_MC_RANDOM,    /* the paper: independent random masks until every ROI patch has K */
  CS_MC_BALANCED,  /* every ROI patch masked exactly K times in the fewest passes */
} CsMcKind;

/* "u2ad" / "zscore", "random" / "balanced"; parsers return FALSE for unknown names. */
const char *cs_detector_kind_name      (CsDetectorKind kind);
gboolean    cs_detector_kind_from_name (const char *name, CsDetectorKind *kind);
const char *cs_mc_kind_name            (CsMcKind kind);
gboolean    cs_mc_kind_from_name       (const char *name, CsMcKind *kind);

/* ---- the model ------------------------------------------------------------------- */

/* A loaded model with its own backend and lock. */
typedef struct _CsPipelineModel CsPipelineModel;

/* Loads safetensors weights (format cordscope-u2ad, version 1, configuration in the
 * metadata) onto a backend: "auto", "cpu" or "cuda" (NULL = "auto"); n_threads <= 0: all
 * cores. Refuses, naming the file: missing file, not safetensors, other format or version,
 * missing / extra / misshapen tensors, NaN or Inf, a bad configuration. When the requested
 * backend is not available the error says why. */
CsPipelineModel *cs_pipeline_model_load (const char *path, const char *backend,
                                         int n_threads, GError **error);
void             cs_pipeline_model_free (CsPipelineModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsPipelineModel, cs_pipeline_model_free)
const char      *cs_pipeline_model_path         (const CsPipelineModel *model);
const char      *cs_pipeline_model_backend_name (const CsPipelineModel *model); /* "cpu" */
/* With backend "auto" on the CPU: why CUDA was not used (for the user to read); else NULL. */
const char      *cs_pipeline_model_backend_note (const CsPipelineModel *model);
int              cs_pipeline_model_img_size     (const CsPipelineModel *model);
/* The configuration as JSON (engine contract keys); g_free. */
char            *cs_pipeline_model_config_json  (const CsPipelineModel *model);

/* A fresh model with MAE initialisation from a preset ("tiny", "small", "reference",
 * "large"), e.g. for tests or adaptation from scratch. */
CsPipelineModel *cs_pipeline_model_new_preset (const char *preset, const char *backend,
                                               int n_threads, guint64 seed, GError **error);
/* Writes the weights atomically as safetensors with the configuration and the extra
 * metadata (NULL-terminated key, value list; may be NULL). */
gboolean         cs_pipeline_model_save (CsPipelineModel *model, const char *path,
                                         const char *const *extra, GError **error);

/* The bundled model's path (data/models/cordscope-u2ad-small.safetensors, installed in
 * CS_PKGDATADIR/models or found in the source tree), or NULL when it is not there. */
char            *cs_pipeline_bundled_model_path (void);

/* ---- detection of one case ------------------------------------------------------- */

/* Default inset of the scored cord interior (CsDetectOptions.cord_inset_px). */
#define CS_DETECT_DEFAULT_CORD_INSET_PX 2
/* Default of CsDetectOptions.patient_over_segments. */
#define CS_DETECT_DEFAULT_PATIENT_OVER_SEGMENTS TRUE

typedef struct
{
  CsDetectorKind detector;  /* CS_DETECTOR_U2AD */
  int k;                    /* Monte-Carlo samples per ROI patch (10) */
  CsMcKind schedule;        /* CS_MC_BALANCED */
  int slice;                /* sagittal slice; -1: the default (largest cord area) */
  guint64 seed;             /* of the Monte-Carlo masks (0) */
  gboolean volume_maps;     /* also put the maps back onto the case's voxel grid (TRUE) */
  int grid_size;            /* grid side for the z-score detector (256); U2AD uses the
                               model's img_size */
  gboolean positive_only;   /* U2AD: anomaly map from max(image - mean, 0) on the ROI (TRUE:
                               only hyperintensity counts, as in the z-score baseline);
                               FALSE: AU = |image - mean| (DESIGN.md's literal reading) */
  gboolean cord_only;       /* score the cord mask itself (TRUE): the anomaly map is zeroed
                               on the 2 px rim the ROI adds and the curve is the mean across
                               the cord's width; FALSE: over the ROI. On 120 phantoms this
                               raised segment F1 / patient AUC for both detectors (see
                               README "Detection"). */
  int cord_inset_px;        /* with cord_only: score only the cord's interior, the mask
                               eroded by this many px (cs_cord_interior), so that a segmenter
                               spilling into bright CSF does not score (0: the whole mask) */
  gboolean patient_over_segments; /* patient score = peak over the labelled segments'
                               rows (TRUE), not over the whole cord: the cord above C2-3 and
                               below C7-T1 runs into the field of view's edge. Cases without
                               segments always use the whole cord. */
} CsDetectOptions;

void cs_detect_options_init (CsDetectOptions *options);

typedef struct
{
  const char *name;         /* "C2-3" .. "C7-T1", static */
  gboolean present;         /* FALSE when its disc is not labelled: score NAN, rows 0 */
  double score;             /* peak of the curve over the segment's grid rows */
  int grid_row_start;       /* grid rows [start, end], inclusive */
  int grid_row_end;
  double row_start;         /* display rows [row_start, row_end) (io/cs-labels.h CsSegment) */
  double row_end;
} CsDetectionSegment;

typedef struct
{
  double load_s;            /* reading the files */
  double slice_s;           /* the 2-D slice, ROI and segment spans */
  double inference_s;       /* Monte-Carlo passes (U2AD) or the z-score map */
  double postprocess_s;     /* post-processing, curve, scores */
  double maps_s;            /* maps back onto the voxel grid */
  double total_s;
} CsDetectionTimings;

typedef struct
{
  char *case_name;
  char *image_path;
  CsDetectorKind detector;
  char *backend;            /* "cpu", "cuda"; "none" for the z-score detector */
  char *model_path;         /* NULL for the z-score detector */
  int k;                    /* as run (0 for z-score) */
  CsMcKind schedule;
  gboolean positive_only;   /* as run (options) */
  gboolean cord_only;
  int cord_inset_px;        /* as run; 0 when not cord_only */
  gboolean patient_over_segments; /* as run: TRUE only when the segments gave the score */
  int n_passes;             /* Monte-Carlo passes run (0 for z-score) */
  int slice_index;          /* sagittal slice of the volume */

  double patient_score;     /* peak of the curve over the cord */
  CsDetectionSegment segments[CS_PIPELINE_N_SEGMENTS];
  gboolean have_segments;   /* FALSE when the case has no usable disc labels */

  /* On the grid (size x size, row-major). */
  int size;
  CsSlice2d *slice;         /* geometry, the normalised image, the cord mask */
  guint8 *roi;              /* the ROI the detector used: cord mask dilated by 2 px */
  float *curve;             /* size values: the anomaly curve per grid row */
  float *anomaly;           /* post-processed anomaly map (what the scores come from) */
  float *eu;                /* U2AD only (else NULL): variance over the K samples */
  float *au;                /* U2AD only: |image - mean| on the ROI, before post-processing */
  float *mean;              /* U2AD only: mean reconstruction, in [0, 1] like the image */

  /* On the case's voxel grid (float32, zero off the slice); NULL unless
   * options.volume_maps, and eu / au / mean NULL for the z-score detector. The mean
   * reconstruction is mapped back to the source intensities (the inverse of the slice's
   * clip and min-max), the others are as on the grid. */
  CsVolume *anomaly_volume;
  CsVolume *eu_volume;
  CsVolume *au_volume;
  CsVolume *mean_volume;

  /* Reconstruction quality on the ROI (U2AD only, else NAN). */
  double mse, psnr, ssim, mean_eu;

  CsDetectionTimings timings;
} CsDetection;

void cs_detection_free (CsDetection *detection);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsDetection, cs_detection_free)

/* Called now and then with a stage ("load", "slice", "inference", "postprocess", "maps")
 * and the fraction of the whole job done (0..1). */
typedef void (*CsPipelineProgressFunc) (const char *stage, double fraction,
                                        gpointer user_data);

/* Detects on one case. model may be NULL only for the z-score detector. The case needs
 * a cord mask (NAME_seg); without disc labels the segments are absent (have_segments
 * FALSE) and the patient score is still given. Errors name the file. */
CsDetection *cs_pipeline_detect_case (const CsCase          *cs_case,
                                      CsPipelineModel       *model,
                                      const CsDetectOptions *options,
                                      GCancellable          *cancellable,
                                      CsPipelineProgressFunc progress,
                                      gpointer               user_data,
                                      GError               **error);

/* The detection as the JSON object `cordscope-cli detect` writes (schema in README,
 * "Detection output"); g_free. */
char *cs_detection_to_json (const CsDetection *detection);

/* Writes NAME_anomaly.nii.gz, NAME_eu.nii.gz, NAME_au.nii.gz, NAME_mean.nii.gz (the last
 * three for U2AD only) into dir (created if missing), float32 in the case's grid.
 * Needs options.volume_maps. */
gboolean cs_detection_write_maps (const CsDetection *detection, const char *dir,
                                  GError **error);

/* ---- ground truth and evaluation -------------------------------------------------- */

typedef struct
{
  gboolean known;                                  /* FALSE: no truth for this case */
  gboolean abnormal;                               /* any hyperintense segment */
  gint8 segment[CS_PIPELINE_N_SEGMENTS];           /* 1 hyperintense, 0 normal, -1 unknown */
} CsCaseTruth;

/* Truth of a case from NAME_truth.json (phantoms), else from its annotation sidecar
 * (segment labels: hyperintense = 1, normal = 0, uncertain / unset = unknown). Returns
 * FALSE with an error only for an unreadable file; a case without either is !known. */
gboolean cs_case_truth_read (const CsCase *cs_case, CsCaseTruth *truth, GError **error);

/* Cross-validated evaluation (DESIGN.md): detection on every case with known truth;
 * patient level with the threshold for sensitivity 0.9, segment level with the
 * F1-optimal threshold, each chosen on the other folds (stratified by patient). */
typedef struct
{
  int n_cases;                  /* cases with truth that were detected */
  int n_skipped;                /* cases without truth or that failed (named on stderr) */
  char **names;                 /* n_cases */
  double *patient_score;        /* n_cases */
  guint8 *patient_truth;        /* n_cases */
  int *fold;                    /* n_cases */
  double *segment_score;        /* n_cases x 6, NAN when absent */
  gint8 *segment_truth;         /* n_cases x 6, -1 unknown */
  int n_folds;
  gboolean patient_ok, segment_ok;  /* FALSE when a level could not be cross-validated */
  char *patient_why, *segment_why;  /* and why */
  CsCvResult *patient;          /* cs-metrics.h results, NULL when !ok */
  CsCvResult *segment;
  int n_segments;               /* segment items scored */
  double mse, psnr, ssim, mean_eu;  /* means over the cases (U2AD only, else NAN) */
  double detect_s;              /* mean detection time per case */
  CsDetectorKind detector;
  char *backend;
  char *model_path;
  int k;
  CsMcKind schedule;
} CsEvaluation;

void cs_evaluation_free (CsEvaluation *evaluation);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsEvaluation, cs_evaluation_free)

/* cases: CsCase*. progress gets stage "detect" and the fraction of cases done. */
CsEvaluation *cs_pipeline_evaluate (GPtrArray             *cases,
                                    CsPipelineModel       *model,
                                    const CsDetectOptions *options,
                                    int                    n_folds,
                                    guint32                seed,
                                    GCancellable          *cancellable,
                                    CsPipelineProgressFunc progress,
                                    gpointer               user_data,
                                    GError               **error);
/* As JSON (schema in README "Evaluation output") and as a readable table; g_free. */
char *cs_evaluation_to_json (const CsEvaluation *evaluation);
char *cs_evaluation_table   (const CsEvaluation *evaluation);

G_END_DECLS
