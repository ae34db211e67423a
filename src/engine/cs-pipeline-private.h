/* cs-pipeline-private.h: what cs-pipeline.c shares with cs-adapt.c and the evaluation:
 * the model behind a CsPipelineModel and the preparation of a case's 2-D slices. */
#pragma once

#include "engine/cs-detect.h"
#include "engine/cs-pipeline.h"
#include "io/cs-labels.h"

G_BEGIN_DECLS

typedef struct _CsModel CsModel;
typedef struct _CsBackend CsBackend;

struct _CsPipelineModel
{
  char *path;
  CsBackend *backend;
  char *backend_note;  /* why "auto" did not give CUDA, or NULL */
  CsModel *model;
  GMutex lock;      /* one forward / training step at a time */
};

#define CS_PIPELINE_ROI_DILATION_PX 2

/* A case's slice as the engine sees it, with its ROI and segment spans. */
typedef struct
{
  CsSlice2d *slice;
  guint8 *roi;                              /* cord mask dilated by 2 px */
  gsize n_roi;
  gboolean have_segments;
  CsSegmentSpan spans[CS_PIPELINE_N_SEGMENTS];  /* grid rows */
  CsSegment display[CS_PIPELINE_N_SEGMENTS];    /* display rows */
} CsPreparedSlice;

void      cs_prepared_slice_clear (CsPreparedSlice *p);

/* The image, cord mask and discs (may be NULL) of a case, loaded and checked. */
typedef struct
{
  CsVolume *image;
  CsVolume *seg;
  GArray *discs;     /* CsDisc, or NULL when the case has none or they are unusable */
} CsCaseVolumes;

gboolean  cs_case_volumes_load  (const CsCase *cs_case, CsCaseVolumes *v, GError **error);
void      cs_case_volumes_clear (CsCaseVolumes *v);

/* Prepares sagittal slice `slice` on a size x size grid. */
gboolean  cs_prepare_slice (const CsCase *cs_case, const CsCaseVolumes *v, int slice, int size,
                            CsPreparedSlice *out, GError **error);

/* Up to n cord slices nearest the default one, sorted (training uses the middle 3). */
int       cs_middle_cord_slices (const CsVolume *image, const CsVolume *seg, int *slices, int n);

/* The pixels a detection scores on a slice: its cord mask's interior, eroded by inset_px
 * (cs_cord_interior); g_free. Detection and AU-guided exclusion share it. */
guint8   *cs_scored_cord_mask (const CsSlice2d *slice, int inset_px);

/* 0/1 mask dilated by a disc of radius r (Euclidean). */
guint8   *cs_dilate_mask (const float *mask, int size, int r, gsize *n_set);

G_END_DECLS
