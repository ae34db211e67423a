/* cs-phantom.h: synthetic sagittal T2w cervical-spine cases with known lesions.
 * The data every detector and evaluation in Cordscope is built and measured on. No GTK. */
#pragma once

#include <glib.h>

#include "io/cs-volume.h"

G_BEGIN_DECLS

#define CS_PHANTOM_GENERATOR_VERSION "cordscope-phantom 1"
#define CS_PHANTOM_N_SEGMENTS 6
#define CS_PHANTOM_MAX_LESIONS 3

/* The normal features of real sagittal T2 that defeat intensity thresholds. Each is on by
 * default at a realistic strength; turning one off makes the phantom cleaner. */
typedef enum
{
  CS_PHANTOM_GIBBS       = 1 << 0,  /* truncation ringing at the cord/CSF interface */
  CS_PHANTOM_SEG_ERROR   = 1 << 1,  /* _seg spills 1-2 px into CSF in stretches */
  CS_PHANTOM_FLOW        = 1 << 2,  /* CSF pulsation ghosts and flow voids */
  CS_PHANTOM_WANDER      = 1 << 3,  /* cord wanders laterally: partial volume with CSF */
  CS_PHANTOM_GM_STRIPE   = 1 << 4,  /* central grey-matter stripe, brighter than white */
  CS_PHANTOM_ENLARGEMENT = 1 << 5,  /* cervical enlargement (C5-C6): wider, brighter cord */
  CS_PHANTOM_DRIFT       = 1 << 6,  /* intensity drift along the cord (coil elements) */
  CS_PHANTOM_ALL_CONFOUNDERS = (1 << 7) - 1,
} CsPhantomConfounder;

/* "gibbs", "seg-error", "flow", "wander", "gm-stripe", "enlargement", "drift". */
const char *cs_phantom_confounder_name  (CsPhantomConfounder confounder);
/* Parses one name as above; 0 when unknown. */
CsPhantomConfounder cs_phantom_confounder_from_name (const char *name);

typedef enum
{
  CS_PHANTOM_SIZE_DEFAULT,  /* clinical grids: 0.5-1 mm in-plane, 9-15 slices */
  CS_PHANTOM_SIZE_SMALL,    /* coarse, small grids for samples and tests */
} CsPhantomSize;

typedef struct
{
  guint64 seed;
  double lesion_rate;       /* fraction of abnormal cases, 0..1 (default 0.4) */
  guint confounders;        /* CsPhantomConfounder flags (default all) */
  CsPhantomSize size;
} CsPhantomOptions;

void cs_phantom_options_init (CsPhantomOptions *options);

typedef struct
{
  int segment;              /* 0..5 = C2-3..C7-T1: the segment the centre was placed in */
  double centre_mm[3];      /* RAS+ mm */
  double length_mm;         /* along the cord */
  double width_mm;          /* antero-posterior */
  double lateral_mm;        /* left-right */
  double contrast;          /* fraction of the way from cord to CSF intensity */
  int voxels;               /* voxels of this lesion in the lesion mask */
} CsPhantomLesion;

typedef struct
{
  char *name;               /* phantom-0000 */
  guint64 seed;
  guint index;
  guint confounders;
  char axcodes[4];          /* storage orientation */
  CsVolume *image;          /* T2w, written as int16 */
  CsVolume *seg;            /* cord mask as an automatic segmenter gives it */
  CsVolume *discs;          /* one voxel per disc, SCT values (3..8, maybe 2 and 9) */
  CsVolume *lesion;         /* truth: 1 inside a lesion */
  CsPhantomLesion lesions[CS_PHANTOM_MAX_LESIONS];
  guint n_lesions;
  gboolean hyperintense[CS_PHANTOM_N_SEGMENTS];  /* segments the lesion mask touches */
  double cord_level;        /* nominal cord white-matter intensity */
  double csf_level;         /* nominal CSF intensity */
} CsPhantomCase;

/* "C2-3" .. "C7-T1" for segment 0..5. */
const char    *cs_phantom_segment_name (int segment);

/* Makes case number index of the series defined by options (seed, rate, ...). The case
 * depends only on the options and its index, not on how many cases are made. */
CsPhantomCase *cs_phantom_case_generate (const CsPhantomOptions *options, guint index);
void           cs_phantom_case_free     (CsPhantomCase *pcase);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsPhantomCase, cs_phantom_case_free)

/* The truth sidecar (NAME_truth.json) as a JSON string. */
char          *cs_phantom_case_truth_json (const CsPhantomCase *pcase);
/* Writes NAME.nii.gz, NAME_seg.nii.gz, NAME_labels-disc.nii.gz, NAME_lesion.nii.gz and
 * NAME_truth.json into dir (which must exist). */
gboolean       cs_phantom_case_write    (const CsPhantomCase *pcase, const char *dir,
                                         GError **error);

/* Makes and writes cases first..first+count-1 into dir (created if missing), on n_threads
 * threads (0: one per processor). Stops at the first error. */
gboolean       cs_phantom_generate      (const CsPhantomOptions *options, const char *dir,
                                         guint first, guint count, guint n_threads,
                                         GError **error);

/* One lesion of the phantoms' model (an ellipsoid with their profile, each voxel moved
 * contrast of the way from its value towards the CSF level) put into a real case's cord:
 * only voxels of the cord mask change. Axes follow the world (RAS): length along
 * superior-inferior, ap along anterior-posterior, lr along left-right. */
typedef struct
{
  double length_mm, ap_mm, lr_mm;   /* full axes (12, 5, 5) */
  double contrast;                  /* 0 < c <= 1 (0.3) */
  gboolean have_centre;             /* FALSE: the cord mask's centroid */
  double centre_vox[3];
} CsLesionInsert;

typedef struct
{
  double centre_vox[3], centre_mm[3];
  double csf_level;                 /* 95th percentile of a 4 mm shell around the cord */
  gsize voxels;                     /* voxels changed (the mask's count) */
} CsLesionInserted;

void      cs_lesion_insert_init (CsLesionInsert *insert);
/* Changes image in place and returns the lesion mask (1 inside) on its grid; NULL with an
 * error naming the file when the masks do not fit or no cord voxel is inside. */
CsVolume *cs_lesion_insert      (CsVolume *image, const CsVolume *seg,
                                 const CsLesionInsert *insert, CsLesionInserted *result,
                                 GError **error);

G_END_DECLS
