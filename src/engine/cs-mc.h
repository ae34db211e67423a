/* cs-mc.h: Monte-Carlo inference of one 2-D slice through the U2AD network (DESIGN.md
 * "U2AD"): the passes of a schedule (random or balanced masks of the ROI patches) run as
 * ONE batch through the model's forward; each pass's predictions of its masked patches
 * are pasted into the image, and K counted samples per ROI patch give the mean
 * reconstruction, EU (population variance over the samples) and AU (|image - mean| on
 * the ROI). Non-ROI pixels: mean = image, EU = 0, AU = 0. */
#pragma once

#include <gio/gio.h>

#include "engine/cs-masking.h"

G_BEGIN_DECLS

typedef struct _CsModel CsModel;

typedef struct
{
  int n_passes;     /* passes run (the batch size of the forward) */
  int n_roi;        /* ROI patches */
  int k;
  double forward_s; /* seconds in the model's forward */
} CsMcStats;

/* image, roi_mask: [S, S] with S the model's img_size. mean, eu, au: S*S each (any may be
 * NULL). The masks come from a GRand seeded with seed, so a seed fixes the result.
 * counts (may be NULL): n_patches ints, how many samples each patch received. Fails when
 * the ROI is empty or the model's forward fails; G_IO_ERROR_CANCELLED when cancellable
 * fires before the forward. The model must not be used by another thread meanwhile. */
gboolean cs_mc_infer (CsModel          *model,
                      const float      *image,
                      const guint8     *roi_mask,
                      int               k,
                      CsMcScheduleKind  kind,
                      guint64           seed,
                      GCancellable     *cancellable,
                      float            *mean,
                      float            *eu,
                      float            *au,
                      int              *counts,
                      CsMcStats        *stats,
                      GError          **error);

G_END_DECLS
