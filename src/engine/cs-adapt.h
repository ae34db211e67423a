/* cs-adapt.h: U2AD adaptation of a pretrained model on a clinical set (DESIGN.md "U2AD").
 *
 * A fresh Adam optimiser; each epoch masks every training slice by the strategy's plan
 * (cs-masking.h): uniformly (random), by EU (eu: softmax(v / tau) over the ROI patches'
 * summed EU, refreshed by Monte-Carlo inference every eu_refresh_every epochs), or by EU
 * plus AU-guided exclusion from au_from_epoch (eu+au: the top 3 AU components' patches
 * stay visible). inverted = TRUE masks the CERTAIN patches more often, as U2AD's
 * published code does; the default follows the paper.
 *
 * Training slices: the 3 middle cord slices of every case with a cord mask (like
 * pretraining), ROI = cord dilated by 2 px.
 *
 * RUN FOLDER (run_dir; the researcher view reads it; all files rewritten atomically):
 *   run.json      {"format": "cordscope-adapt-run", "version": 1, "status": "running" |
 *                  "done" | "cancelled" | "failed", "error", "model_in", "checkpoint",
 *                  "config" (model configuration JSON object), "options" {strategy, epochs,
 *                  batch, lr, lr_step_epochs, lr_step_gamma, eu_refresh_every,
 *                  au_from_epoch, au_percentile, tau, inverted, k, mc_schedule, augment, seed},
 *                  "grid_size", "cases" [names], "n_slices", "watched" [names],
 *                  "epochs_done", "wall_s", "images_per_s",
 *                  "refreshes" [{"epoch", "mean_eu_all" (null when not computed),
 *                  "watched" [{"case", "slice", "mean_eu", "mean_au", "mse", "psnr", "ssim",
 *                  "maps": {"image", "roi", "eu", "au", "mean", and "excluded" in eu+au
 *                  runs}: file names relative to run_dir}]}]}
 *   loss.csv      step,epoch,loss,loss_img,loss_edge,lr,images_per_s   (one row per step)
 *   epochs.csv    epoch,loss,loss_img,loss_edge,lr,images_per_s,wall_s,mean_eu_watched
 *   maps/epoch-EEEE/CASE_{image,roi,eu,au,mean}.f32   raw little-endian float32,
 *                  grid_size x grid_size, row-major, row 0 superior (the engine's grid);
 *                  written at every refresh (epoch 0 = before adaptation, and after the
 *                  last epoch as epoch `epochs`)
 *   maps/epoch-EEEE/CASE_excluded.f32   (eu+au, every refresh but the last) 1 on the
 *                  pixels of the patches AU-guided exclusion keeps visible until the next
 *                  refresh (from au_from_epoch on; before it, what it would keep), else 0
 *   checkpoint.safetensors   the weights after the last completed epoch
 */
#pragma once

#include <gio/gio.h>

#include "engine/cs-masking.h"
#include "engine/cs-pipeline.h"

G_BEGIN_DECLS

typedef struct
{
  CsAdaptStrategy strategy;  /* CS_ADAPT_EU_AU */
  int epochs;                /* 200 */
  int batch_size;            /* 10 */
  float lr;                  /* 3e-3 */
  int lr_step_epochs;        /* 50 */
  float lr_step_gamma;       /* 0.1 */
  int eu_refresh_every;      /* 10 */
  int au_from_epoch;         /* 150 */
  double au_percentile;      /* 90: AU components are found above this percentile of the
                                map's positive values (DESIGN.md) */
  double tau;                /* 1.0 */
  gboolean inverted;         /* FALSE: the paper's direction */
  int k;                     /* Monte-Carlo samples at a refresh (10) */
  CsMcKind mc_schedule;      /* CS_MC_BALANCED */
  gboolean augment;          /* TRUE */
  guint64 seed;              /* 0 */
  int slices_per_case;       /* 3 */
  int n_watch;               /* cases whose maps are kept at each refresh (3) */
  const char *run_dir;       /* may be NULL: no run folder */
} CsAdaptOptions;

void cs_adapt_options_init (CsAdaptOptions *options);

/* "random", "eu", "eu+au". */
const char *cs_adapt_strategy_name      (CsAdaptStrategy strategy);
gboolean    cs_adapt_strategy_from_name (const char *name, CsAdaptStrategy *strategy);

typedef struct
{
  int epoch;            /* 1-based, the epoch just finished */
  int epochs;
  double loss, loss_img, loss_edge;
  float lr;
  double images_per_s;  /* this epoch, refresh excluded */
  double eta_s;
  double elapsed_s;
  gboolean refreshed;   /* the maps were refreshed before this epoch */
  double mean_eu;       /* mean EU over the watched cases' ROI at the latest refresh */
} CsAdaptProgress;

/* Return FALSE to stop after this epoch (like cancelling). Called on the calling thread. */
typedef gboolean (*CsAdaptProgressFunc) (const CsAdaptProgress *progress, gpointer user_data);

typedef struct
{
  int epochs_done;
  int n_slices;
  double wall_s;
  double images_per_s;       /* training images per second over the run */
  double first_mean_eu;      /* watched cases, epoch 0 */
  double last_mean_eu;       /* watched cases, after the last epoch */
} CsAdaptResult;

/* Adapts model in place on cases. On cancel (G_IO_ERROR_CANCELLED, checked between
 * batches) or any failure after the first epoch the model holds the weights of the last
 * completed epoch, which run_dir/checkpoint.safetensors also holds. */
gboolean cs_adapt_run (CsPipelineModel     *model,
                       GPtrArray           *cases,
                       const CsAdaptOptions *options,
                       CsAdaptProgressFunc  progress,
                       gpointer             user_data,
                       GCancellable        *cancellable,
                       CsAdaptResult       *result,
                       GError             **error);

G_END_DECLS
