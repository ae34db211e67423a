/* cs-masking.h: which patches the masked autoencoder hides, for U2AD.
 *
 * Patch grid (engine contract): an image of height x width pixels in patches of P x P gives
 * grid_rows = height / P by grid_cols = width / P patches, patch index p = prow * grid_cols +
 * pcol. A patch is ROI when any ROI pixel lies in it. Patch states: 0 visible, 1 masked,
 * 2 dropped context. Only ROI patches are ever masked.
 *
 * Everything random draws from a caller-owned GRand (Mersenne Twister), so a seed fixes the
 * result on every platform. */
#pragma once

#include <glib.h>

#include "cs-patch.h"

G_BEGIN_DECLS

/* Marks patch_is_roi[p] = 1 for patches containing a non-zero roi_mask pixel, 0 otherwise;
 * height and width must be multiples of patch. Returns the number of ROI patches. */
int cs_roi_patches_from_mask (const guint8 *roi_mask, int height, int width, int patch,
                              guint8 *patch_is_roi);

/* Initial states: 0 for every patch, except non-ROI patches whose Chebyshev distance (in
 * patches) to the nearest ROI patch exceeds margin, which get 2. margin < 0 keeps all.
 * With no ROI patch at all and margin >= 0 every patch is dropped. */
void cs_context_states (const guint8 *patch_is_roi, int grid_rows, int grid_cols, int margin,
                        guint8 *states);

/* How many of n_candidates patches a pass masks: round(ratio * n), half away from zero, at
 * least 1 when ratio > 0 and n > 0, at most n. */
int cs_mask_count (int n_candidates, double ratio);

/* Uniform random masking: among patches with maskable[p] != 0, sets states[p] = 1 for
 * cs_mask_count (n_maskable, ratio) of them. Returns how many were masked. */
int cs_mask_random (const guint8 *maskable, int n_patches, double ratio, GRand *rng,
                    guint8 *states);

/* Sums a per-pixel map over each patch: patch_sums[grid_rows * grid_cols]. */
void cs_patch_sums (const float *map, int height, int width, int patch, double *patch_sums);

/* Weighted masking without replacement: among maskable patches draws
 * cs_mask_count (n_maskable, ratio) of them, in law the same as successive sampling with
 * weights softmax(logits) (each draw in proportion to the weights not yet drawn, like
 * torch.multinomial without replacement), and sets their states to 1; logits NULL = all
 * equal (uniform). Implemented as Gumbel-top-k: one uniform per patch, maskable or not, so
 * rng advances by exactly n_patches draws whatever the logits and the maskable set.
 * Returns how many were masked. */
int cs_mask_by_logits (const guint8 *maskable, const double *logits, int n_patches,
                       double ratio, GRand *rng, guint8 *states);

/* EU-guided masking: cs_mask_by_logits with logits s * patch_eu / tau over the maskable
 * patches, s = +1 (the paper: uncertain patches masked more often) or -1 when inverted
 * (U2AD's published code). Returns how many were masked. */
int cs_mask_eu_guided (const guint8 *maskable, const double *patch_eu, int n_patches,
                       double ratio, double tau, gboolean inverted, GRand *rng, guint8 *states);

/* AU-guided exclusion: au restricted to roi_mask pixels; pixels at or above the
 * percentile-th percentile of its positive values (cs_percentile_positive) form 8-connected
 * components; those with at least min_pixels pixels are scored by mean x sum of AU and the
 * n_components best (ties: earlier in raster order) are kept. excluded[p] = 1 for every
 * patch holding a pixel of a kept component, else 0. Returns the number of components kept.
 * Reference: percentile 90, min_pixels 2, n_components 3. */
int cs_au_exclusion (const float *au, const guint8 *roi_mask, int height, int width, int patch,
                     double percentile, int min_pixels, int n_components, guint8 *excluded);

/* Adaptation (DESIGN.md "U2AD"): which masking each epoch uses. */
typedef enum {
  CS_ADAPT_RANDOM, /* uniform masking throughout (the ablation baseline) */
  CS_ADAPT_EU,     /* EU-guided masking throughout */
  CS_ADAPT_EU_AU,  /* EU-guided throughout, plus AU-guided exclusion from au_from_epoch */
} CsAdaptStrategy;

typedef struct {
  CsAdaptStrategy strategy;
  int eu_refresh_every; /* refresh the EU / AU maps every this many epochs (reference 10) */
  int au_from_epoch;    /* first epoch with AU-guided exclusion (reference 150) */
} CsAdaptSchedule;

typedef struct {
  gboolean refresh_maps; /* run Monte-Carlo inference before this epoch: epoch % every == 0 */
  gboolean eu_guided;    /* mask by EU rather than uniformly */
  gboolean au_excluded;  /* keep the AU components' patches visible */
} CsAdaptEpochPlan;

/* The reference schedule for a strategy: refresh every 10 epochs, AU from epoch 150. */
CsAdaptSchedule cs_adapt_schedule_reference (CsAdaptStrategy strategy);

void cs_adapt_plan_epoch (const CsAdaptSchedule *schedule, int epoch, CsAdaptEpochPlan *plan);

/* One training item's mask for an epoch: base_states (dropped context) copied to states,
 * then ROI patches not excluded (excluded may be NULL; it is ignored unless the plan
 * excludes) are masked with ratio, by EU (patch_eu, tau, inverted) when the plan is
 * EU-guided, else uniformly; both through cs_mask_by_logits, so rng advances by n_patches
 * draws either way and two strategies fed one stream mask alike where EU is flat. Returns
 * how many patches were masked. */
int cs_adapt_mask_item (const CsAdaptEpochPlan *plan,
                        const guint8           *patch_is_roi,
                        const guint8           *base_states,
                        const double           *patch_eu,
                        const guint8           *excluded,
                        int                     n_patches,
                        double                  ratio,
                        double                  tau,
                        gboolean                inverted,
                        GRand                  *rng,
                        guint8                 *states);

/* Monte-Carlo schedules: passes such that every ROI patch is masked in at least K passes;
 * exactly K of its reconstructions (counted[pass * n_patches + p] = 1) enter the statistics. */
typedef enum {
  CS_MC_SCHEDULE_RANDOM,   /* the paper: independent random masks until every ROI patch has
                              been masked K times; the first K reconstructions count */
  CS_MC_SCHEDULE_BALANCED, /* every ROI patch masked exactly K times in the fewest passes */
} CsMcScheduleKind;

typedef struct {
  CsMcScheduleKind kind;
  int n_patches;
  int n_roi;       /* ROI patches */
  int k;           /* samples per ROI patch */
  int n_masked;    /* patches masked per pass: cs_mask_count (n_roi, ratio) */
  int n_passes;
  guint8 *states;  /* n_passes x n_patches: the base states with 1 for masked patches */
  guint8 *counted; /* n_passes x n_patches: 1 where the pass's reconstruction is a sample */
} CsMcSchedule;

/* Independent uniform masks of cs_mask_count (n_roi, ratio) ROI patches each, as many as it
 * takes to mask every ROI patch k times. base_states gives the dropped context (may be NULL
 * for all visible). */
CsMcSchedule *cs_mc_schedule_new_random (const guint8 *patch_is_roi, const guint8 *base_states,
                                         int n_patches, int k, double ratio, GRand *rng);

/* Fewest passes with every ROI patch masked exactly k times: with n = n_roi and m =
 * cs_mask_count (n, ratio) a pass masks at most m patches, so at least ceil(k n / m) passes
 * are needed; this schedule uses exactly that many. The passes are consecutive windows of m
 * over k random permutations of the ROI patches laid end to end; each permutation starts with
 * patches that the window crossing into it has not taken yet, so no window repeats a patch.
 * The remainder: when m does not divide k n, the last pass is topped up to m masked patches
 * from a (k+1)-th permutation, and those extra reconstructions are not counted, so every
 * pass sees the same mask ratio as training. */
CsMcSchedule *cs_mc_schedule_new_balanced (const guint8 *patch_is_roi, const guint8 *base_states,
                                           int n_patches, int k, double ratio, GRand *rng);

void cs_mc_schedule_free (CsMcSchedule *schedule);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsMcSchedule, cs_mc_schedule_free)

G_END_DECLS
