/* cs-train.h: pretraining over a set of 2-D slices (random ROI masking, augmentation, Adam).
 *
 * Deterministic for a seed (and a thread count): the epoch order, the masks, the
 * augmentation and the model init all come from GRand streams derived from the seed.
 *
 * Augmentation (training only, per image, in this order): mean = mean of the image;
 * b, c ~ U(0.8, 1.2); x' = (x - mean) * c + mean * b; x' += N(0, 0.02^2) per pixel;
 * clip to [0, 1]; min-max to [0, 1] (left as is when max == min). The edge target is
 * the Sobel map of the augmented image.
 */
#pragma once

#include <gio/gio.h>

#include "cs-model.h"

G_BEGIN_DECLS

typedef struct
{
  const float  *image; /* [H, W], H = W = config img_size, values in [0, 1] */
  const guint8 *roi;   /* [H, W], non-zero = ROI (cord) */
} CsTrainSlice;

typedef struct
{
  int      epochs;         /* 100 */
  int      batch_size;     /* 10 */
  float    lr;             /* 3e-3 */
  int      lr_step_epochs; /* 50: lr *= lr_step_gamma every lr_step_epochs epochs */
  float    lr_step_gamma;  /* 0.1 */
  gboolean augment;        /* TRUE */
  guint64  seed;
} CsTrainOptions;

typedef struct
{
  int    epoch;          /* 1-based, the epoch just finished */
  int    epochs;
  double loss;           /* mean total loss over the epoch's batches */
  double loss_img;
  double loss_edge;
  double images_per_s;   /* this epoch */
  double eta_s;          /* seconds left, from the mean epoch time so far */
  float  lr;
} CsTrainProgress;

/* Return FALSE to stop training after this epoch (like cancelling). */
typedef gboolean (*CsTrainProgressFunc) (const CsTrainProgress *progress, gpointer user_data);

void cs_train_options_init (CsTrainOptions *options); /* the defaults above, seed 0 */

/* The augmentation above, applied to one image (out may equal in). */
void cs_train_augment (float *out, const float *in, int H, int W, GRand *rng);

/* Pretrains model on slices for options->epochs epochs (shuffled each epoch; the last
 * batch may be smaller). Calls progress after every epoch. Returns FALSE with
 * G_IO_ERROR_CANCELLED when cancellable fires (checked between batches: the model then
 * holds the last completed step), or another error on bad input. */
gboolean cs_train_pretrain (CsModel *model, const CsTrainSlice *slices, int n_slices,
                            const CsTrainOptions *options, CsTrainProgressFunc progress,
                            gpointer user_data, GCancellable *cancellable, GError **error);

G_END_DECLS
