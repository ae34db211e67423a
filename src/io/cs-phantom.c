/* cs-phantom.c: synthetic sagittal T2w cervical-spine cases with known lesions.
 *
 * The anatomy is described in a frame that follows the spinal canal: s is the arc length
 * along the canal's centreline (0 at the top of the C2 body, growing inferiorly), u the
 * antero-posterior offset from it (positive posterior) and x the left-right offset
 * (positive right). Each sagittal slice is rendered from sub-slices through its
 * thickness (partial volume), then blurred with the acquisition's point spread function
 * (a truncated sinc when Gibbs ringing is on), then given texture, bias, drift, ghosts
 * and Rician noise, and finally stored in one of several storage orientations. */
#include "cs-config.h"
#include "io/cs-phantom.h"
#include "io/cs-slice2d.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define DT_UINT8_CODE 2   /* NIfTI datatype codes; nifti1.h is not needed for two numbers */
#define DT_INT16_CODE 4

/* ---------------------------------------------------------------- random numbers */

/* xoshiro256**, seeded through splitmix64: small, fast, and the same on every platform. */
typedef struct
{
  guint64 s[4];
  gboolean have_spare;
  double spare;
} CsRng;

static guint64
splitmix64 (guint64 *x)
{
  guint64 z = (*x += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* One independent stream per (seed, case, purpose): a case never depends on the count. */
static void
rng_init (CsRng *rng, guint64 seed, guint64 index, guint64 purpose)
{
  guint64 x = seed;
  guint64 mix = splitmix64 (&x) ^ (index * G_GUINT64_CONSTANT (0xD1B54A32D192ED03));
  mix ^= purpose * G_GUINT64_CONSTANT (0x8CB92BA72F3D8DD7);
  for (int i = 0; i < 4; i++)
    rng->s[i] = splitmix64 (&mix);
  rng->have_spare = FALSE;
}

static inline guint64
rotl (guint64 x, int k)
{
  return (x << k) | (x >> (64 - k));
}

static inline guint64
rng_next (CsRng *rng)
{
  guint64 *s = rng->s;
  guint64 result = rotl (s[1] * 5, 7) * 9;
  guint64 t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl (s[3], 45);
  return result;
}

static inline double
rng_uniform (CsRng *rng)
{
  return (rng_next (rng) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double
rng_range (CsRng *rng, double lo, double hi)
{
  return lo + (hi - lo) * rng_uniform (rng);
}

static inline int
rng_int (CsRng *rng, int n)
{
  return (int) (rng_uniform (rng) * n);
}

/* Approximately standard normal: the sum of four 16-bit uniforms (Irwin-Hall), scaled.
 * Four times cheaper than Box-Muller, and noise texture needs no exact tails. */
static inline double
rng_noise (CsRng *rng)
{
  guint64 r = rng_next (rng);
  double sum = (double) (r & 0xffff) + (double) ((r >> 16) & 0xffff)
               + (double) ((r >> 32) & 0xffff) + (double) (r >> 48);
  return (sum * (1.0 / 65536.0) - 2.0) * 1.7320508075688772;
}

static inline double
rng_gauss (CsRng *rng)
{
  if (rng->have_spare)
    {
      rng->have_spare = FALSE;
      return rng->spare;
    }
  double u1 = rng_uniform (rng), u2 = rng_uniform (rng);
  double r = sqrt (-2.0 * log (u1 + 1e-300));
  rng->spare = r * sin (2 * G_PI * u2);
  rng->have_spare = TRUE;
  return r * cos (2 * G_PI * u2);
}

/* ---------------------------------------------------------------- names and options */

static const char *const confounder_names[] = {
  "gibbs", "seg-error", "flow", "wander", "gm-stripe", "enlargement", "drift",
};

static const char *const segment_names[CS_PHANTOM_N_SEGMENTS] = {
  "C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1",
};

const char *
cs_phantom_confounder_name (CsPhantomConfounder confounder)
{
  for (guint i = 0; i < G_N_ELEMENTS (confounder_names); i++)
    if (confounder == (1u << i))
      return confounder_names[i];
  return NULL;
}

CsPhantomConfounder
cs_phantom_confounder_from_name (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (confounder_names); i++)
    if (g_strcmp0 (name, confounder_names[i]) == 0)
      return 1u << i;
  return 0;
}

const char *
cs_phantom_segment_name (int segment)
{
  return segment >= 0 && segment < CS_PHANTOM_N_SEGMENTS ? segment_names[segment] : NULL;
}

void
cs_phantom_options_init (CsPhantomOptions *options)
{
  options->seed = 1;
  options->lesion_rate = 0.4;
  options->confounders = CS_PHANTOM_ALL_CONFOUNDERS;
  options->size = CS_PHANTOM_SIZE_DEFAULT;
}

/* ---------------------------------------------------------------- the scene */

#define STEP_MM 0.25              /* resolution of the tables along the centreline */
#define S_FIRST -140.0            /* arc length range covered by the tables */
#define S_LAST 300.0
#define N_BODIES 9                /* C2 C3 C4 C5 C6 C7 T1 T2 T3 */
#define N_DISCS (N_BODIES - 1)    /* C2-3 .. T2-3; SCT disc value = index + 3 */
#define MAX_VOIDS 4
#define MAX_GHOST_BUMPS 4

/* Relative intensities (cord white matter = 1) of a young adult's fast spin-echo T2. */
typedef struct
{
  double csf, marrow, nucleus[N_DISCS], annulus, ligament, fat, muscle, skin, brain,
    pharynx_wall, cortical;
} CsTissueLevels;

typedef struct
{
  double s, half_len, side, depth;  /* side: -1 anterior, +1 posterior CSF */
} CsFlowVoid;

/* The lesion profile at squared normalised radius r (< 1 inside): full contrast in the
 * core, fading a little towards the rim. Phantoms and inserted lesions share it. */
static double
lesion_weight (double r)
{
  return r < 0.6 ? 1.0 : 1.0 - 0.4 * (r - 0.6) / 0.4;
}

typedef struct
{
  double s, u, x;                  /* centre, u and x relative to the cord's centre */
  double half_len, half_ap, half_lat;
  double contrast;
  int segment;
} CsLesionShape;

typedef struct
{
  /* tables along s */
  int n;
  float *cy, *cz, *ty, *tz;        /* centreline (mm) and unit tangent (inferior) */
  float *cord_u, *cord_x;          /* cord centre relative to the canal centreline */
  float *cord_a, *cord_b;          /* cord half widths: lateral, antero-posterior */
  float *ant_wall, *post_wall;     /* canal boundaries (distance from centreline) */
  float *cord_gain;                /* cord brightness (cervical enlargement) */
  float *ant_skin, *post_skin;     /* body outline */
  gint8 *column;                   /* column_at () per table entry, and its rel */
  float *column_rel;

  double canal_ant, canal_post;    /* bony canal without bulges */
  double sac_lat;                  /* lateral half width of the dural sac */
  double body_top[N_BODIES], body_bottom[N_BODIES];
  double body_depth, body_lat, lamina_th, prevert_th, airway_w, fat_th;
  double spinous_len[N_BODIES];
  double bulge[N_DISCS];
  double gm_gain;                  /* grey matter stripe, relative to white matter */
  double foramen_s;                /* foramen magnum: brain above, cord below */
  CsTissueLevels lv;
  CsFlowVoid voids[MAX_VOIDS];
  int n_voids;
  CsLesionShape lesions[CS_PHANTOM_MAX_LESIONS];
  int n_lesions;
  double waves[8][3];              /* soft-tissue heterogeneity: ky, kz, phase */
  double planes[4][3];             /* fat planes between muscles: ky, kz, phase */
} CsScene;

static void
scene_clear (CsScene *sc)
{
  float **tables[] = { &sc->cy, &sc->cz, &sc->ty, &sc->tz, &sc->cord_u, &sc->cord_x,
                       &sc->cord_a, &sc->cord_b, &sc->ant_wall, &sc->post_wall,
                       &sc->cord_gain, &sc->ant_skin, &sc->post_skin };
  for (guint i = 0; i < G_N_ELEMENTS (tables); i++)
    g_clear_pointer (tables[i], g_free);
  g_clear_pointer (&sc->column, g_free);
  g_clear_pointer (&sc->column_rel, g_free);
}

static inline int
scene_index (const CsScene *sc, double s)
{
  int k = (int) lrint ((s - S_FIRST) / STEP_MM);
  return CLAMP (k, 0, sc->n - 1);
}

static inline double
smoothstep (double e0, double e1, double x)
{
  double t = CLAMP ((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

static inline double
bump (double x, double centre, double half_width)
{
  double d = (x - centre) / half_width;
  return exp (-0.5 * d * d);
}

/* A smooth random function of s: a few Gaussian bumps of random sign. */
typedef struct
{
  double c[6], w[6], a[6];
} CsSmoothNoise;

static void
smooth_noise_init (CsSmoothNoise *sn, CsRng *rng, double s_lo, double s_hi, double width_lo,
                   double width_hi)
{
  for (int i = 0; i < 6; i++)
    {
      sn->c[i] = rng_range (rng, s_lo, s_hi);
      sn->w[i] = rng_range (rng, width_lo, width_hi);
      sn->a[i] = rng_range (rng, -1, 1);
    }
}

static double
smooth_noise_at (const CsSmoothNoise *sn, double s)
{
  double v = 0;
  for (int i = 0; i < 6; i++)
    v += sn->a[i] * bump (s, sn->c[i], sn->w[i]);
  return v;
}

/* Which vertebral structure sits at arc length s in the anterior column: returns the body
 * index (>= 0), or -(disc index + 1) for a disc, or N_BODIES when above C2 / below T3. */
static int
column_at (const CsScene *sc, double s, double *rel)
{
  for (int b = 0; b < N_BODIES; b++)
    {
      if (s >= sc->body_top[b] && s <= sc->body_bottom[b])
        {
          *rel = (s - sc->body_top[b]) / (sc->body_bottom[b] - sc->body_top[b]);
          return b;
        }
      if (b + 1 < N_BODIES && s > sc->body_bottom[b] && s < sc->body_top[b + 1])
        {
          *rel = (s - sc->body_bottom[b]) / (sc->body_top[b + 1] - sc->body_bottom[b]);
          return -(b + 1);
        }
    }
  *rel = 0;
  return N_BODIES;
}

static inline int
column_lookup (const CsScene *sc, double s, double *rel)
{
  int k = scene_index (sc, s);
  *rel = sc->column_rel[k];
  return sc->column[k];
}

static double
disc_mid (const CsScene *sc, int d)
{
  return 0.5 * (sc->body_bottom[d] + sc->body_top[d + 1]);
}

/* ---------------------------------------------------------------- one sample */

typedef struct
{
  float value;     /* relative intensity */
  guint8 cord;     /* inside the cord */
  guint8 csf;      /* inside the CSF (for pulsation ghosts) */
  guint8 soft;     /* neck muscle and soft tissue: gets fat planes and heterogeneity */
  gint8 lesion;    /* lesion index, or -1 */
} CsSample;

static void
sample_outside_canal (const CsScene *sc, int k, double s, double u, double x, CsSample *out)
{
  const CsTissueLevels *lv = &sc->lv;
  double rel;
  int col = column_lookup (sc, s, &rel);

  if (u < 0)
    {
      /* anterior: bodies and discs, prevertebral tissue, airway, neck, skin, air */
      if (u < -sc->ant_skin[k])
        {
          out->value = 0;
          return;
        }
      double depth = -u - sc->canal_ant;
      if (u < -sc->ant_skin[k] + 1.5)
        {
          out->value = lv->skin;
          return;
        }
      if (u < -sc->ant_skin[k] + 1.5 + sc->fat_th)
        {
          out->value = lv->fat;
          return;
        }
      if (depth < 0)
        {
          /* between the dural sac and the bodies: a bulging disc, or ligament and veins */
          if (col < 0 && col != N_BODIES && -u > sc->ant_wall[k] - 0.01)
            out->value = lv->annulus;
          else
            out->value = depth > -0.8 ? lv->ligament : 0.55;
          return;
        }
      if (fabs (x) > sc->body_lat)
        {
          out->value = col >= 0 ? lv->cortical + 0.3 : lv->muscle;  /* uncovertebral / vessels */
          return;
        }
      if (depth < sc->body_depth && col != N_BODIES)
        {
          if (col >= 0)
            {
              double edge_s = MIN (rel, 1 - rel) * (sc->body_bottom[col] - sc->body_top[col]);
              double edge_u = MIN (depth, sc->body_depth - depth);
              out->value = (edge_s < 0.9 || edge_u < 0.9) ? lv->cortical : lv->marrow;
            }
          else
            {
              int d = -col - 1;
              double cu = (depth / sc->body_depth - 0.5) * 2;
              double cs = (rel - 0.5) * 2;
              out->value = (cu * cu + cs * cs * 1.8 < 0.55) ? lv->nucleus[d] : lv->annulus;
            }
          return;
        }
      if (col == N_BODIES && s < sc->body_top[0] && depth < sc->body_depth)
        {
          /* the dens and C1's anterior arch above the C2 body, then the clivus */
          double ds = sc->body_top[0] - s;
          if (ds < 16 && depth > 0.25 * sc->body_depth && depth < 0.75 * sc->body_depth)
            out->value = ds > 14 ? lv->cortical : lv->marrow;
          else if (ds > 4 && ds < 13 && depth > sc->body_depth + 1)
            out->value = lv->marrow;
          else
            out->value = ds > 20 ? lv->cortical + 0.1 : lv->muscle;
          return;
        }
      double front = depth - sc->body_depth;
      out->soft = 1;
      if (front < sc->prevert_th)
        out->value = lv->muscle;
      else if (front < sc->prevert_th + sc->airway_w && fabs (x) < 9
               && s > sc->body_top[0] - 5)
        {
          out->value = (front < sc->prevert_th + 1.2) ? lv->pharynx_wall : 0.02;
          out->soft = 0;
        }
      else
        out->value = 0.75 * lv->muscle + 0.25 * lv->fat;
      return;
    }

  /* posterior: laminae, spinous processes, ligaments, muscle, fat, skin, air; the
   * posterior fossa above the foramen magnum */
  if (u > sc->post_skin[k])
    {
      out->value = 0;
      return;
    }
  if (u > sc->post_skin[k] - 1.5)
    {
      out->value = lv->skin;
      return;
    }
  if (u > sc->post_skin[k] - 1.5 - sc->fat_th * 1.4)
    {
      out->value = lv->fat;
      return;
    }
  double dp = u - sc->canal_post;
  if (s < sc->foramen_s)
    {
      double above = sc->foramen_s - s;
      if (dp < 4 + 0.6 * above)
        out->value = lv->csf;  /* cisterna magna */
      else if (dp < 45 + 0.5 * above)
        out->value = lv->brain;
      else if (dp < 51 + 0.5 * above)
        out->value = lv->cortical;
      else
        out->value = lv->muscle;
      return;
    }
  if (dp < 0)
    {
      out->value = lv->fat;  /* epidural fat */
      return;
    }
  /* laminae lie a little below their bodies; the spinous processes slope down */
  for (int b = 0; b < N_BODIES; b++)
    {
      double shift = 3 + dp * 0.45;
      double top = sc->body_top[b] + shift, bottom = sc->body_bottom[b] + shift + 1;
      if (s < top || s > bottom)
        continue;
      if (dp < sc->lamina_th)
        {
          double edge = MIN (MIN (s - top, bottom - s), MIN (dp, sc->lamina_th - dp));
          out->value = edge < 0.8 ? lv->cortical : lv->marrow;
          return;
        }
      /* the spinous process tapers towards its tip */
      double along = (dp - sc->lamina_th) / sc->spinous_len[b];
      double h = bottom - top;
      if (fabs (x) < 4 && along < 1 && s > top + (0.3 + 0.35 * along) * h
          && s < bottom - 0.15 * along * h)
        {
          double edge = MIN (s - top - (0.3 + 0.35 * along) * h, bottom - 0.15 * along * h - s);
          out->value = (fabs (x) > 3 || edge < 0.8) ? lv->cortical : 0.6 * lv->marrow;
          return;
        }
      break;
    }
  if (dp < sc->lamina_th)
    {
      out->value = dp < 1.5 ? lv->ligament : lv->fat;  /* ligamentum flavum, then fat */
      return;
    }
  if (fabs (x) < 1.5 && dp < 45)
    out->value = lv->ligament + 0.2;  /* ligamentum nuchae */
  else
    {
      out->value = lv->muscle;
      out->soft = 1;
    }
}

static void
scene_sample (const CsScene *sc, double s, double u, double x, CsSample *out)
{
  int k = scene_index (sc, s);
  out->cord = 0;
  out->csf = 0;
  out->soft = 0;
  out->lesion = -1;

  double ant = sc->ant_wall[k], post = sc->post_wall[k];
  if (u >= -ant && u <= post)
    {
      double du = u - sc->cord_u[k], dx = x - sc->cord_x[k];
      double a = sc->cord_a[k], b = sc->cord_b[k];
      double rc = dx * dx / (a * a) + du * du / (b * b);
      if (rc < 1)
        {
          double v = sc->cord_gain[k];
          /* grey matter: a central stripe, brighter than the white matter around it */
          if (sc->gm_gain > 0 && fabs (du) < 0.38 * b && fabs (dx) < 0.55 * a)
            v *= 1 + sc->gm_gain * (1 - fabs (du) / (0.38 * b));
          for (int l = 0; l < sc->n_lesions; l++)
            {
              const CsLesionShape *ls = &sc->lesions[l];
              double ds = (s - ls->s) / ls->half_len;
              double dl = (du - ls->u) / ls->half_ap;
              double dxl = (dx - ls->x) / ls->half_lat;
              double r = ds * ds + dl * dl + dxl * dxl;
              if (r < 1)
                {
                  v += lesion_weight (r) * ls->contrast * (sc->lv.csf - v);
                  out->lesion = (gint8) l;
                  break;
                }
            }
          out->value = (float) v;
          out->cord = 1;
          return;
        }
      double mid = 0.5 * (post - ant), half = 0.5 * (post + ant);
      double ru = (u - mid) / half, rx = x / sc->sac_lat;
      if (ru * ru + rx * rx < 1)
        {
          double v = sc->lv.csf;
          for (int i = 0; i < sc->n_voids; i++)
            {
              const CsFlowVoid *fv = &sc->voids[i];
              if ((u - sc->cord_u[k]) * fv->side > 0)
                v *= 1 - fv->depth * bump (s, fv->s, fv->half_len);
            }
          out->value = (float) v;
          out->csf = 1;
          return;
        }
      /* inside the bony canal, outside the sac: epidural fat behind, veins in front */
      if (fabs (x) < sc->sac_lat + 2.5)
        {
          out->value = (float) (u > 0 ? sc->lv.fat : 0.6);
          return;
        }
    }
  if (fabs (x) > sc->sac_lat + 2.5 && u > -sc->canal_ant - 1 && u < sc->canal_post + 1)
    {
      /* lateral to the sac: pedicles at the vertebrae, foramina (fat, roots) at discs */
      double rel;
      int col = column_lookup (sc, s - 2, &rel);
      out->value = (float) (col >= 0 && col < N_BODIES ? sc->lv.marrow * 0.9 : 1.3);
      return;
    }
  sample_outside_canal (sc, k, s, u, x, out);
}

/* ---------------------------------------------------------------- case geometry */

typedef struct
{
  int nx, ny, nz;                  /* canonical grid: x right, y anterior, z superior */
  double dx, dy, dz;               /* slice thickness, in-plane spacing */
  double x0, y0, z0;               /* scene position of voxel (0,0,0) */
  int mid_slice;
} CsGrid;

static double
lerp_table (const float *t, int n, double s)
{
  double f = (s - S_FIRST) / STEP_MM;
  if (f <= 0)
    return t[0];
  if (f >= n - 1)
    return t[n - 1];
  int i = (int) f;
  double w = f - i;
  return t[i] * (1 - w) + t[i + 1] * w;
}

/* Arc length of the centreline point at height z (the centreline is monotone in z). */
static double
s_at_height (const CsScene *sc, double z)
{
  int lo = 0, hi = sc->n - 1;
  while (hi - lo > 1)
    {
      int mid = (lo + hi) / 2;
      if (sc->cz[mid] > z)
        lo = mid;
      else
        hi = mid;
    }
  double w = (sc->cz[lo] - z) / MAX (sc->cz[lo] - sc->cz[hi], 1e-9);
  return S_FIRST + (lo + CLAMP (w, 0.0, 1.0)) * STEP_MM;
}

/* Builds the anatomy of one case from its random stream. */
static void
scene_build (CsScene *sc, CsRng *rng, guint confounders)
{
  memset (sc, 0, sizeof *sc);
  sc->n = (int) ((S_LAST - S_FIRST) / STEP_MM) + 1;
  int n = sc->n;
  float **tables[] = { &sc->cy, &sc->cz, &sc->ty, &sc->tz, &sc->cord_u, &sc->cord_x,
                       &sc->cord_a, &sc->cord_b, &sc->ant_wall, &sc->post_wall,
                       &sc->cord_gain, &sc->ant_skin, &sc->post_skin };
  for (guint i = 0; i < G_N_ELEMENTS (tables); i++)
    *tables[i] = g_new0 (float, n);

  double size = rng_range (rng, 0.9, 1.1);

  /* vertebral column: C2 is tall, the lower cervical bodies 13-15 mm, discs 4-6 mm */
  double heights[N_BODIES] = { 21, 14, 14, 14, 14.5, 15, 16.5, 18, 19 };
  double discs[N_DISCS] = { 4.5, 5.2, 5.6, 5.8, 5.6, 5.0, 4.5, 4.5 };
  double s = 0;
  for (int b = 0; b < N_BODIES; b++)
    {
      sc->body_top[b] = s;
      s += heights[b] * size * rng_range (rng, 0.93, 1.07);
      sc->body_bottom[b] = s;
      if (b < N_DISCS)
        s += discs[b] * size * rng_range (rng, 0.8, 1.2);
    }
  sc->column = g_new (gint8, n);
  sc->column_rel = g_new (float, n);
  for (int i = 0; i < n; i++)
    {
      double rel;
      sc->column[i] = (gint8) column_at (sc, S_FIRST + i * STEP_MM, &rel);
      sc->column_rel[i] = (float) rel;
    }
  sc->body_depth = rng_range (rng, 15, 18) * size;
  sc->body_lat = rng_range (rng, 15, 19);
  sc->lamina_th = rng_range (rng, 5, 7);
  sc->prevert_th = rng_range (rng, 3, 7);
  sc->airway_w = rng_range (rng, 12, 20);
  sc->fat_th = rng_range (rng, 3, 12);
  for (int b = 0; b < N_BODIES; b++)
    sc->spinous_len[b] = (b == 0 ? 28 : b == 5 ? 38 : b >= 6 ? 32 : 18) * rng_range (rng, 0.8, 1.2);
  sc->foramen_s = -rng_range (rng, 22, 30);

  sc->canal_ant = rng_range (rng, 5.0, 6.5) * size;   /* cord centre to posterior body */
  sc->canal_post = rng_range (rng, 6.0, 8.5) * size;
  sc->sac_lat = rng_range (rng, 10.5, 13);
  for (int d = 0; d < N_DISCS; d++)
    {
      /* most discs bulge a little; some (lower cervical) narrow the canal markedly */
      double severe = (d >= 2 && d <= 4 && rng_uniform (rng) < 0.3) ? rng_range (rng, 1, 2.5) : 0;
      sc->bulge[d] = rng_range (rng, 0, 1.2) + severe;
    }

  CsTissueLevels *lv = &sc->lv;
  lv->csf = rng_range (rng, 2.7, 3.3);
  lv->marrow = rng_range (rng, 0.75, 1.15);
  for (int d = 0; d < N_DISCS; d++)
    {
      /* a quarter of the discs are degenerate: a dark nucleus */
      double degenerate = rng_uniform (rng), level = rng_uniform (rng);
      lv->nucleus[d] = degenerate < 0.25 ? 0.5 + 0.4 * level : 1.3 + 1.0 * level;
    }
  lv->annulus = rng_range (rng, 0.3, 0.45);
  lv->ligament = rng_range (rng, 0.1, 0.2);
  lv->fat = rng_range (rng, 1.7, 2.5);
  lv->muscle = rng_range (rng, 0.4, 0.6);
  lv->skin = rng_range (rng, 0.8, 1.1);
  lv->brain = rng_range (rng, 1.1, 1.35);
  lv->pharynx_wall = rng_range (rng, 0.9, 1.3);
  lv->cortical = rng_range (rng, 0.12, 0.22);

  /* the centreline: lordosis of varying degree between C2 and T1, a global tilt (head
   * flexion or extension), and mild thoracic kyphosis below */
  double lordosis = rng_range (rng, -0.12, 0.7);
  double tilt = rng_range (rng, -0.25, 0.3);
  double s_c2 = 0, s_t1 = sc->body_top[6];
  double *theta = g_new (double, n);
  for (int i = 0; i < n; i++)
    {
      double si = S_FIRST + i * STEP_MM;
      double t = CLAMP ((si - s_c2) / (s_t1 - s_c2), 0.0, 1.0);
      theta[i] = tilt + lordosis * (0.5 - t);
      if (si > s_t1)
        theta[i] -= 0.004 * (si - s_t1);
      if (si < s_c2)
        theta[i] += 0.003 * (s_c2 - si);  /* the cranio-cervical junction bends forward */
    }
  int i0 = scene_index (sc, 0);
  sc->cy[i0] = 0;
  sc->cz[i0] = 0;
  for (int i = 0; i < n; i++)
    {
      sc->ty[i] = (float) sin (theta[i]);
      sc->tz[i] = (float) -cos (theta[i]);
    }
  for (int i = i0 + 1; i < n; i++)
    {
      sc->cy[i] = sc->cy[i - 1] + (float) (STEP_MM * 0.5 * (sc->ty[i - 1] + sc->ty[i]));
      sc->cz[i] = sc->cz[i - 1] + (float) (STEP_MM * 0.5 * (sc->tz[i - 1] + sc->tz[i]));
    }
  for (int i = i0 - 1; i >= 0; i--)
    {
      sc->cy[i] = sc->cy[i + 1] - (float) (STEP_MM * 0.5 * (sc->ty[i + 1] + sc->ty[i]));
      sc->cz[i] = sc->cz[i + 1] - (float) (STEP_MM * 0.5 * (sc->tz[i + 1] + sc->tz[i]));
    }
  g_free (theta);

  /* the cord: half widths, centre wandering within the sac, enlargement at C5-C6 */
  double a0 = rng_range (rng, 5.8, 6.8), b0 = rng_range (rng, 3.3, 4.1);
  double enl_c = 0.5 * (sc->body_top[3] + sc->body_bottom[4]);  /* C5-C6 */
  double enl_w = rng_range (rng, 14, 22);
  /* every random draw happens whatever the options, so that turning a confounder off
   * changes only that confounder, not the rest of the case */
  gboolean enlargement = (confounders & CS_PHANTOM_ENLARGEMENT) != 0;
  double enl_gain = rng_range (rng, 0.05, 0.13) * enlargement;
  double enl_width = rng_range (rng, 0.10, 0.2) * enlargement;
  sc->gm_gain = rng_range (rng, 0.06, 0.16) * ((confounders & CS_PHANTOM_GM_STRIPE) != 0);
  CsSmoothNoise wander_x, wander_u, width_n;
  smooth_noise_init (&wander_x, rng, -20, 170, 8, 25);
  smooth_noise_init (&wander_u, rng, -20, 170, 10, 30);
  smooth_noise_init (&width_n, rng, -20, 170, 10, 30);
  double wander_amp = rng_range (rng, 1.0, 2.6) * ((confounders & CS_PHANTOM_WANDER) != 0);
  double cord_u0 = rng_range (rng, -0.6, 0.6);

  CsSmoothNoise skin_n;
  smooth_noise_init (&skin_n, rng, -60, 250, 20, 50);
  double ant_neck = rng_range (rng, 55, 72) * size, post_neck = rng_range (rng, 48, 68) * size;

  for (int i = 0; i < n; i++)
    {
      double si = S_FIRST + i * STEP_MM;
      /* the medulla widens above the foramen magnum */
      double medulla = smoothstep (sc->foramen_s + 10, sc->foramen_s - 15, si);
      double enl = bump (si, enl_c, enl_w);
      double lower = smoothstep (sc->body_top[6], sc->body_bottom[7], si);  /* thoracic: thinner */
      sc->cord_a[i] = (float) (a0 * (1 + enl_width * enl + 0.25 * medulla - 0.15 * lower)
                               * (1 + 0.04 * smooth_noise_at (&width_n, si)));
      sc->cord_b[i] = (float) (b0 * (1 + 0.05 * enl + 0.3 * medulla - 0.08 * lower));
      sc->cord_gain[i] = (float) (1 + enl_gain * enl);
      sc->cord_x[i] = (float) (wander_amp * 0.8 * smooth_noise_at (&wander_x, si));

      double bul = 0;
      for (int d = 0; d < N_DISCS; d++)
        bul += sc->bulge[d] * bump (si, disc_mid (sc, d), 2.2 + 0.4 * sc->bulge[d]);
      double ant = sc->canal_ant - bul;
      /* ligamentum flavum buckles in at the disc levels too, less */
      double post = sc->canal_post - 0.35 * bul + 6 * medulla;
      sc->ant_wall[i] = (float) ant;
      sc->post_wall[i] = (float) post;
      /* keep the cord inside the sac with at least a thin film of CSF behind */
      double cu = cord_u0 + 0.5 * wander_amp * smooth_noise_at (&wander_u, si);
      double lo = -ant + sc->cord_b[i] * 0.85, hi = post - sc->cord_b[i] - 0.8;
      sc->cord_u[i] = (float) CLAMP (cu, MIN (lo, hi), hi);

      double jaw = 35 * smoothstep (sc->body_top[2], sc->body_top[0] - 10, si);
      double chest = 45 * smoothstep (sc->body_top[6], sc->body_bottom[8] + 30, si);
      double head = 50 * smoothstep (sc->body_top[0], sc->foramen_s - 20, si);
      double shoulder = 20 * smoothstep (sc->body_top[5], sc->body_bottom[8], si);
      sc->ant_skin[i] = (float) (sc->canal_ant + ant_neck + jaw + chest
                                 + 6 * smooth_noise_at (&skin_n, si));
      sc->post_skin[i] = (float) (sc->canal_post + post_neck + head + shoulder
                                  + 6 * smooth_noise_at (&skin_n, si + 100));
    }

  for (int w = 0; w < 8; w++)
    {
      double angle = rng_range (rng, 0, G_PI), k = 2 * G_PI / rng_range (rng, 6, 30);
      sc->waves[w][0] = k * cos (angle);
      sc->waves[w][1] = k * sin (angle);
      sc->waves[w][2] = rng_range (rng, 0, 2 * G_PI);
    }
  for (int w = 0; w < 4; w++)
    {
      /* muscles run along the neck: the fat planes between them are steep */
      double angle = rng_range (rng, -0.4, 0.4), k = 2 * G_PI / rng_range (rng, 15, 35);
      sc->planes[w][0] = k * cos (angle);
      sc->planes[w][1] = k * sin (angle);
      sc->planes[w][2] = rng_range (rng, 0, 2 * G_PI);
    }

  /* flow voids: dark stretches of CSF where it pulses fastest (upper and mid cervical) */
  sc->n_voids = 1 + rng_int (rng, MAX_VOIDS);
  for (int v = 0; v < sc->n_voids; v++)
    {
      sc->voids[v].s = rng_range (rng, -10, sc->body_bottom[4]);
      sc->voids[v].half_len = rng_range (rng, 2, 8);
      sc->voids[v].side = rng_uniform (rng) < 0.65 ? 1 : -1;
      sc->voids[v].depth = rng_range (rng, 0.3, 0.8);
    }
  if (!(confounders & CS_PHANTOM_FLOW))
    sc->n_voids = 0;
}

/* ---------------------------------------------------------------- rendering */

typedef struct
{
  float *value;     /* nx * nz * ny, slice-major: [ix][iz][iy] */
  float *csf;       /* CSF fraction, same layout */
  guint8 *cord;     /* cord sample count (of n_sub) */
  guint8 *lesion;   /* lesion sample count */
  gint8 *lesion_id; /* which lesion, -1 none */
  int n_sub;
} CsRender;

static inline gsize
grid_index (const CsGrid *g, int ix, int iy, int iz)
{
  return ((gsize) ix * g->nz + iz) * g->ny + iy;
}

/* Projects every in-plane grid point onto the centreline: (s, u) per pixel, by Newton
 * steps along the local tangent, starting from the centreline point at the same height. */
static void
project_plane (const CsScene *sc, const CsGrid *g, float *ps, float *pu)
{
  for (int iz = g->nz - 1; iz >= 0; iz--)
    {
      double z = g->z0 + iz * g->dz;
      double s_guess = s_at_height (sc, z);
      for (int iy = 0; iy < g->ny; iy++)
        {
          double y = g->y0 + iy * g->dy;
          double si = s_guess;
          double u = 0;
          for (int it = 0; it < 4; it++)
            {
              int k = scene_index (sc, si);
              double py = y - lerp_table (sc->cy, sc->n, si);
              double pz = z - lerp_table (sc->cz, sc->n, si);
              double ty = sc->ty[k], tz = sc->tz[k];
              double step = py * ty + pz * tz;
              u = py * tz - pz * ty;  /* along the normal (tz, -ty), which points posterior */
              si += step;
              if (fabs (step) < 0.01)
                break;
            }
          si = CLAMP (si, S_FIRST, S_LAST);
          ps[(gsize) iz * g->ny + iy] = (float) si;
          pu[(gsize) iz * g->ny + iy] = (float) u;
          s_guess = si;
        }
    }
}

static void
render_scene (const CsScene *sc, const CsGrid *g, CsRender *r)
{
  gsize plane = (gsize) g->ny * g->nz;
  g_autofree float *ps = g_new (float, plane);
  g_autofree float *pu = g_new (float, plane);
  project_plane (sc, g, ps, pu);

  /* soft tissue is not uniform: smooth heterogeneity, and thin fat planes between the
   * muscles; both depend on the in-plane position only */
  g_autofree float *hetero = g_new (float, plane);
  g_autofree guint8 *fat_plane = g_new (guint8, plane);
  for (int iz = 0; iz < g->nz; iz++)
    for (int iy = 0; iy < g->ny; iy++)
      {
        gsize p = (gsize) iz * g->ny + iy;
        double y = g->y0 + iy * g->dy, z = g->z0 + iz * g->dz, h = 0;
        for (int w = 0; w < 8; w++)
          h += sin (sc->waves[w][0] * y + sc->waves[w][1] * z + sc->waves[w][2]);
        hetero[p] = (float) (1 + 0.05 * h);
        fat_plane[p] = 0;
        for (int w = 0; w < 2; w++)
          if (cos (sc->planes[w][0] * y + sc->planes[w][1] * z + sc->planes[w][2]) > 0.99)
            fat_plane[p] = 1;
      }

  int n_sub = r->n_sub;
  for (int ix = 0; ix < g->nx; ix++)
    for (int sub = 0; sub < n_sub; sub++)
      {
        double x = g->x0 + ix * g->dx + ((sub + 0.5) / n_sub - 0.5) * g->dx;
        for (int iz = 0; iz < g->nz; iz++)
          for (int iy = 0; iy < g->ny; iy++)
            {
              gsize p = (gsize) iz * g->ny + iy;
              gsize vi = grid_index (g, ix, iy, iz);
              CsSample smp;
              scene_sample (sc, ps[p], pu[p], x, &smp);
              if (smp.soft)
                smp.value = fat_plane[p] ? (float) sc->lv.fat : smp.value * hetero[p];
              r->value[vi] += smp.value / n_sub;
              r->csf[vi] += (float) smp.csf / n_sub;
              r->cord[vi] += smp.cord;
              if (smp.lesion >= 0)
                {
                  r->lesion[vi]++;
                  r->lesion_id[vi] = smp.lesion;
                }
            }
      }
}

/* Convolves every row (axis y) or column (axis z) of every slice with a symmetric kernel,
 * replicating the edges. */
static void
convolve_axis (const CsGrid *g, float *data, const float *kernel, int half, gboolean along_y)
{
  int len = along_y ? g->ny : g->nz;
  gsize stride = along_y ? 1 : (gsize) g->ny;
  int lines = along_y ? g->nz : g->ny;
  g_autofree float *line = g_new (float, len + 2 * half);
  for (int ix = 0; ix < g->nx; ix++)
    for (int l = 0; l < lines; l++)
      {
        float *base = data + (gsize) ix * g->nz * g->ny + (along_y ? (gsize) l * g->ny : (gsize) l);
        for (int i = -half; i < len + half; i++)
          line[i + half] = base[(gsize) CLAMP (i, 0, len - 1) * stride];
        for (int i = 0; i < len; i++)
          {
            float acc = kernel[0] * line[i + half];
            for (int j = 1; j <= half; j++)
              acc += kernel[j] * (line[i + half - j] + line[i + half + j]);
            base[(gsize) i * stride] = acc;
          }
      }
}

/* The acquisition's point spread function along one axis, in voxels of the reconstructed
 * grid. `ratio` = voxel size / acquired resolution (<= 1: zero-filled reconstructions are
 * finer than what was acquired). With Gibbs ringing: k-space truncated there, a sinc
 * with only a mild taper; without: a Gaussian of the same width, which does not ring. */
static int
make_psf (float *kernel, int max_half, double ratio, gboolean gibbs)
{
  ratio = CLAMP (ratio, 0.3, 1.0);
  double sum = 0;
  int half = max_half;
  for (int j = 0; j <= half; j++)
    {
      double t = j * ratio;
      double k;
      if (gibbs)
        {
          double sinc = j == 0 ? 1.0 : sin (G_PI * t) / (G_PI * t);
          k = sinc * (0.75 + 0.25 * cos (G_PI * j / (half + 1.0)));
        }
      else
        k = exp (-0.5 * (t / 0.5) * (t / 0.5));
      kernel[j] = (float) k;
      sum += j == 0 ? k : 2 * k;
    }
  for (int j = 0; j <= half; j++)
    kernel[j] = (float) (kernel[j] / sum);
  return half;
}

/* ---------------------------------------------------------------- storage */

/* Storage orientations: each letter is where the voxel axis points (nibabel's axcodes). */
static const char *const storage_orientations[] = {
  "PSR", "LAS", "RPI", "ASL", "PIR", "RAS", "LPS", "SPL", "AIL", "PSL",
};

typedef struct
{
  int canon_axis[3];  /* 0 x, 1 y, 2 z for each stored axis */
  gboolean flip[3];   /* stored index runs against the canonical axis */
} CsStorage;

static void
storage_from_codes (const char *codes, CsStorage *st)
{
  for (int t = 0; t < 3; t++)
    {
      char c = codes[t];
      st->canon_axis[t] = (c == 'L' || c == 'R') ? 0 : (c == 'A' || c == 'P') ? 1 : 2;
      st->flip[t] = (c == 'L' || c == 'P' || c == 'I');
    }
}

/* Copies a canonical [ix][iz][iy] array into a new volume stored as st says. */
static CsVolume *
store_volume (const CsGrid *g, const CsStorage *st, const double world[3], const float *canon)
{
  int cdim[3] = { g->nx, g->ny, g->nz };
  double cspace[3] = { g->dx, g->dy, g->dz };
  double corigin[3] = { g->x0 + world[0], g->y0 + world[1], g->z0 + world[2] };
  int dim[3];
  double aff[4][4] = { { 0 } };
  aff[3][3] = 1;
  double origin[3] = { corigin[0], corigin[1], corigin[2] };
  for (int t = 0; t < 3; t++)
    {
      int c = st->canon_axis[t];
      dim[t] = cdim[c];
      aff[c][t] = st->flip[t] ? -cspace[c] : cspace[c];
      if (st->flip[t])
        origin[c] += (cdim[c] - 1) * cspace[c];
    }
  for (int c = 0; c < 3; c++)
    aff[c][3] = origin[c];

  CsVolume *vol = cs_volume_new (dim, (const double (*)[4]) aff);
  /* canonical layout [ix][iz][iy]: element strides of x, y, z */
  gssize cstride[3] = { (gssize) g->nz * g->ny, 1, g->ny };
  gssize step[3], base = 0;
  for (int t = 0; t < 3; t++)
    {
      int c = st->canon_axis[t];
      step[t] = st->flip[t] ? -cstride[c] : cstride[c];
      if (st->flip[t])
        base += (gssize) (cdim[c] - 1) * cstride[c];
    }
  float *out = vol->data;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      {
        gssize ci = base + k * step[2] + j * step[1];
        for (int i = 0; i < dim[0]; i++, ci += step[0])
          *out++ = canon[ci];
      }
  return vol;
}

/* ---------------------------------------------------------------- one case */

enum { STREAM_GEOMETRY = 1, STREAM_NOISE = 2 };

/* Display row (0 = most superior) of canonical z index iz. */
static inline int
display_row (const CsGrid *g, int iz)
{
  return g->nz - 1 - iz;
}

/* Segment spans in display rows from the six disc rows (DESIGN.md): the boundary between
 * two discs is the midpoint of their rows; the first and last segments extend by half
 * the neighbouring gap. Spans are [lo, hi] in half-rows to keep midpoints exact. */
static void
segment_spans (const int disc_row[CS_PHANTOM_N_SEGMENTS], double lo[], double hi[])
{
  for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
    {
      double up = k > 0 ? 0.5 * (disc_row[k - 1] + disc_row[k])
                        : disc_row[0] - 0.5 * (disc_row[1] - disc_row[0]);
      double down = k < CS_PHANTOM_N_SEGMENTS - 1 ? 0.5 * (disc_row[k] + disc_row[k + 1])
                        : disc_row[k] + 0.5 * (disc_row[k] - disc_row[k - 1]);
      lo[k] = up;
      hi[k] = down;
    }
}

CsPhantomCase *
cs_phantom_case_generate (const CsPhantomOptions *options, guint index)
{
  CsRng rng, noise;
  rng_init (&rng, options->seed, index, STREAM_GEOMETRY);
  rng_init (&noise, options->seed, index, STREAM_NOISE);
  guint conf = options->confounders & CS_PHANTOM_ALL_CONFOUNDERS;
  gboolean small = options->size == CS_PHANTOM_SIZE_SMALL;

  CsPhantomCase *pc = g_new0 (CsPhantomCase, 1);
  pc->name = g_strdup_printf ("phantom-%04u", index);
  pc->seed = options->seed;
  pc->index = index;
  pc->confounders = conf;

  gboolean abnormal = rng_uniform (&rng) < options->lesion_rate;

  CsScene sc;
  scene_build (&sc, &rng, conf);

  /* ---- grid: field of view, voxel size, slices */
  CsGrid g = { 0 };
  static const double in_plane[] = { 0.5, 0.5625, 0.625, 0.7, 0.75, 0.8, 0.9, 1.0 };
  double vox = in_plane[rng_int (&rng, G_N_ELEMENTS (in_plane))];
  if (small)
    vox = 1.0;
  g.nx = small ? 9 : 9 + rng_int (&rng, 7);
  g.dx = small ? 2.5 : 2.0 + 0.1 * rng_int (&rng, 11);
  double top_s = -rng_range (&rng, 20, 45);
  double bottom_s = sc.body_bottom[7] + rng_range (&rng, 5, 30);  /* into T3 at least */
  double z_top = lerp_table (sc.cz, sc.n, top_s);
  double z_bottom = lerp_table (sc.cz, sc.n, bottom_s);
  double fov_z = MAX (z_top - z_bottom, rng_range (&rng, 185, 250));
  double fov_y = rng_range (&rng, 185, 250);
  if (small)
    fov_y = 180;  /* air in front and behind the neck, no more */
  int max_matrix = small ? 260 : 384;
  if (fov_z / vox > max_matrix || fov_y / vox > max_matrix)
    vox = MAX (fov_z, fov_y) / max_matrix;
  g.dy = g.dz = vox;
  g.nz = (int) ceil (fov_z / vox);
  g.ny = (int) ceil (fov_y / vox);
  g.z0 = z_top - (g.nz - 1) * vox;
  /* centre A-P on the canal at mid-neck, with a random offset */
  double y_mid = lerp_table (sc.cy, sc.n, 0.5 * (top_s + bottom_s)) - rng_range (&rng, -18, 12);
  g.y0 = y_mid - 0.5 * (g.ny - 1) * vox;
  /* the slices straddle the cord's midline at a random phase */
  double phase = rng_range (&rng, -0.5, 0.5) * g.dx;
  g.x0 = -0.5 * (g.nx - 1) * g.dx + phase;
  g.mid_slice = (int) lrint (-g.x0 / g.dx);

  const char *codes = storage_orientations[rng_int (&rng, G_N_ELEMENTS (storage_orientations))];
  memcpy (pc->axcodes, codes, 4);
  double world[3] = { rng_range (&rng, -10, 10), rng_range (&rng, -60, 40),
                      rng_range (&rng, -200, 50) };

  /* ---- disc labels: the posterior tip of each disc on the mid-sagittal slice */
  int n_labels = N_DISCS;
  int disc_iy[N_DISCS], disc_iz[N_DISCS];
  for (int d = 0; d < n_labels; d++)
    {
      double sd = disc_mid (&sc, d);
      int k = scene_index (&sc, sd);
      double u = -sc.canal_ant - 0.6;  /* just inside the disc's posterior margin */
      /* (s, u) -> (y, z): c(s) + u n, with n = (tz, -ty) the normal pointing posterior */
      disc_iy[d] = (int) lrint ((sc.cy[k] + u * sc.tz[k] - g.y0) / g.dy);
      disc_iz[d] = (int) lrint ((sc.cz[k] - u * sc.ty[k] - g.z0) / g.dz);
    }
  /* odd gaps between consecutive disc rows keep segment boundaries off whole rows */
  for (int d = 1; d < n_labels; d++)
    if ((disc_iz[d - 1] - disc_iz[d]) % 2 == 0)
      disc_iz[d] += 1;
  int disc_row[CS_PHANTOM_N_SEGMENTS];
  for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
    disc_row[k] = display_row (&g, disc_iz[k]);
  double span_lo[CS_PHANTOM_N_SEGMENTS], span_hi[CS_PHANTOM_N_SEGMENTS];
  segment_spans (disc_row, span_lo, span_hi);

  /* ---- lesions, placed by segment */
  if (abnormal)
    {
      int n_les = 1 + rng_int (&rng, 3);
      int order[CS_PHANTOM_N_SEGMENTS] = { 0, 1, 2, 3, 4, 5 };
      for (int i = CS_PHANTOM_N_SEGMENTS - 1; i > 0; i--)
        {
          int j = rng_int (&rng, i + 1), t = order[i];
          order[i] = order[j];
          order[j] = t;
        }
      for (int l = 0; l < n_les; l++)
        {
          CsLesionShape *ls = &sc.lesions[sc.n_lesions];
          int seg = order[l];
          double row = rng_range (&rng, span_lo[seg] + 1, span_hi[seg] - 1);
          double z = g.z0 + (g.nz - 1 - row) * g.dz;
          ls->s = s_at_height (&sc, z);
          int k = scene_index (&sc, ls->s);
          double b = sc.cord_b[k], a = sc.cord_a[k];
          double width = rng_range (&rng, 0.7, 1.0) * 2 * b;
          ls->half_ap = 0.5 * width;
          ls->half_len = 0.5 * width * rng_range (&rng, 1.0, 4.0);
          ls->half_lat = rng_range (&rng, 0.45, 0.9) * a;
          ls->u = rng_range (&rng, -1, 1) * (b - ls->half_ap);
          ls->x = rng_range (&rng, -0.3, 0.3) * (a - ls->half_lat);
          ls->contrast = rng_range (&rng, 0.1, 0.9);
          ls->segment = seg;
          /* no overlap between lesions: they are counted one by one */
          gboolean clash = FALSE;
          for (int m = 0; m < sc.n_lesions; m++)
            if (fabs (sc.lesions[m].s - ls->s) < sc.lesions[m].half_len + ls->half_len + 1)
              clash = TRUE;
          if (!clash)
            sc.n_lesions++;
        }
    }

  /* ---- render */
  gsize nvox = (gsize) g.nx * g.ny * g.nz;
  CsRender r = { 0 };
  r.n_sub = 3;
  r.value = g_new0 (float, nvox);
  r.csf = g_new0 (float, nvox);
  r.cord = g_new0 (guint8, nvox);
  r.lesion = g_new0 (guint8, nvox);
  r.lesion_id = g_new (gint8, nvox);
  memset (r.lesion_id, -1, nvox);
  render_scene (&sc, &g, &r);

  /* tissue texture before the PSF: marrow, muscle and cord are not uniform */
  double texture = rng_range (&rng, 0.10, 0.16);
  for (gsize i = 0; i < nvox; i++)
    r.value[i] *= (float) (1 + texture * rng_noise (&noise));

  /* point spread function: Gibbs ringing mostly along A-P (phase-encode), weaker S-I */
  gboolean gibbs = (conf & CS_PHANTOM_GIBBS) != 0;
  float kern[16];
  int half = make_psf (kern, 12, g.dy / rng_range (&rng, 0.8, 1.2), gibbs);
  convolve_axis (&g, r.value, kern, half, TRUE);
  half = make_psf (kern, 10, g.dz / rng_range (&rng, 0.9, 1.4), gibbs);
  convolve_axis (&g, r.value, kern, half, FALSE);

  /* CSF pulsation ghosts: faint copies of the CSF column displaced along the phase-encode
   * direction (A-P), in stretches where the pulsation was out of step with the readout */
  int ghost_shift = (int) lrint (rng_range (&rng, 2.5, 9) / g.dy);
  double ghost_amp = rng_range (&rng, 0.05, 0.12) * sc.lv.csf;
  CsSmoothNoise ghost_mod;
  smooth_noise_init (&ghost_mod, &rng, g.z0, g.z0 + g.nz * g.dz, 5, 15);
  if (conf & CS_PHANTOM_FLOW)
    {
      int shift = ghost_shift;
      double amp = ghost_amp;
      const CsSmoothNoise *mod = &ghost_mod;
      g_autofree float *ghost = g_new0 (float, nvox);
      for (int ix = 0; ix < g.nx; ix++)
        for (int iz = 0; iz < g.nz; iz++)
          {
            double m = CLAMP (fabs (smooth_noise_at (mod, g.z0 + iz * g.dz)), 0.0, 1.0);
            if (m < 0.05)
              continue;
            for (int iy = 0; iy < g.ny; iy++)
              {
                double c = 0;
                if (iy - shift >= 0)
                  c += r.csf[grid_index (&g, ix, iy - shift, iz)];
                if (iy + shift < g.ny)
                  c += r.csf[grid_index (&g, ix, iy + shift, iz)];
                ghost[grid_index (&g, ix, iy, iz)] = (float) (amp * m * c);
              }
          }
      for (gsize i = 0; i < nvox; i++)
        r.value[i] += ghost[i];
    }

  /* bias field (receive coil: the spine array is behind the neck), drift along S-I, then
   * scale to scanner units, multiplicative texture noise and Rician noise */
  double b_ap = rng_range (&rng, 0.1, 0.3), b_si = rng_range (&rng, -0.1, 0.1);
  double b_quad = rng_range (&rng, -0.15, 0.05), b_lr = rng_range (&rng, -0.05, 0.05);
  gboolean drift = (conf & CS_PHANTOM_DRIFT) != 0;
  double d_lin = rng_range (&rng, -0.25, 0.25) * drift;
  CsSmoothNoise coil;
  smooth_noise_init (&coil, &rng, g.z0, g.z0 + g.nz * g.dz, 12, 30);
  double coil_amp = rng_range (&rng, 0.08, 0.2) * drift;
  double level = rng_range (&rng, 220, 380);
  double speckle = rng_range (&rng, 0.05, 0.10);
  double sigma = rng_range (&rng, 0.0012, 0.003) * level;
  g_autofree float *field_yz = g_new (float, (gsize) g.ny * g.nz);
  for (int iz = 0; iz < g.nz; iz++)
    {
      double nz_ = (iz / (double) (g.nz - 1)) * 2 - 1;
      double zmm = g.z0 + iz * g.dz;
      double dr = 1 + d_lin * nz_ + coil_amp * smooth_noise_at (&coil, zmm);
      for (int iy = 0; iy < g.ny; iy++)
        {
          double ny_ = (iy / (double) (g.ny - 1)) * 2 - 1;
          double f = exp (-b_ap * ny_ + b_si * nz_ + b_quad * nz_ * nz_);
          field_yz[(gsize) iz * g.ny + iy] = (float) (f * MAX (dr, 0.3));
        }
    }
  g_autofree float *image = g_new (float, nvox);
  for (int ix = 0; ix < g.nx; ix++)
    {
      double lr = 1 + b_lr * ((ix / (double) MAX (g.nx - 1, 1)) * 2 - 1);
      for (gsize p = 0; p < (gsize) g.ny * g.nz; p++)
        {
          gsize i = (gsize) ix * g.ny * g.nz + p;
          double v = r.value[i] * field_yz[p] * lr * level;
          v *= 1 + speckle * rng_noise (&noise);
          double re = v + sigma * rng_noise (&noise), im = sigma * rng_noise (&noise);
          double mag = sqrt (re * re + im * im);
          image[i] = (float) MIN (rint (mag), 32767.0);
        }
    }

  /* ---- masks: the truth cord and lesions from the sample counts */
  g_autofree float *cord = g_new0 (float, nvox);
  g_autofree float *lesion = g_new0 (float, nvox);
  for (gsize i = 0; i < nvox; i++)
    {
      cord[i] = 2 * r.cord[i] >= r.n_sub ? 1.0f : 0.0f;
      lesion[i] = 2 * r.lesion[i] >= r.n_sub ? 1.0f : 0.0f;
    }
  int lesion_vox[CS_PHANTOM_MAX_LESIONS] = { 0 };
  for (int ix = 0; ix < g.nx; ix++)
    for (int iz = 0; iz < g.nz; iz++)
      for (int iy = 0; iy < g.ny; iy++)
        {
          gsize i = grid_index (&g, ix, iy, iz);
          if (lesion[i] == 0)
            continue;
          lesion_vox[r.lesion_id[i]]++;
          double row = display_row (&g, iz);
          for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
            if (row > span_lo[k] && row < span_hi[k])
              pc->hyperintense[k] = TRUE;
        }

  /* the segmenter's mask: the cord, spilling 1-2 px into the CSF in stretches, and
   * sometimes taking in the partial-volume cord of a lateral slice */
  g_autofree float *seg = g_memdup2 (cord, nvox * sizeof (float));
  {
    int n_stretch = 3 + rng_int (&rng, 5);
    for (int t = 0; t < n_stretch; t++)
        {
          double zc = rng_range (&rng, g.z0, g.z0 + g.nz * g.dz);
          double len = rng_range (&rng, 5, 30);
          int spill = 1 + (rng_uniform (&rng) < 0.5);
          int side = rng_int (&rng, 3) - 1;  /* -1 posterior, 0 both, +1 anterior */
          gboolean lateral = rng_uniform (&rng) < 0.3;
          if (!(conf & CS_PHANTOM_SEG_ERROR))
            continue;
          for (int iz = 0; iz < g.nz; iz++)
            {
              double zmm = g.z0 + iz * g.dz;
              if (fabs (zmm - zc) > 0.5 * len)
                continue;
              for (int ix = 0; ix < g.nx; ix++)
                for (int iy = 0; iy < g.ny; iy++)
                  {
                    gsize i = grid_index (&g, ix, iy, iz);
                    if (lateral && r.cord[i] > 0)
                      seg[i] = 1;
                    if (cord[i] == 0)
                      continue;
                    for (int d = 1; d <= spill; d++)
                      {
                        if (side >= 0 && iy + d < g.ny)
                          seg[grid_index (&g, ix, iy + d, iz)] = 1;
                        if (side <= 0 && iy - d >= 0)
                          seg[grid_index (&g, ix, iy - d, iz)] = 1;
                      }
                  }
            }
        }
    }

  g_autofree float *discs = g_new0 (float, nvox);
  gboolean with_c1 = rng_uniform (&rng) < 0.5, with_t1 = rng_uniform (&rng) < 0.5;
  for (int d = 0; d < n_labels; d++)
    {
      int value = d + 3;
      if (value > 9 || (value == 9 && !with_t1))
        continue;
      int iy = CLAMP (disc_iy[d], 0, g.ny - 1), iz = CLAMP (disc_iz[d], 0, g.nz - 1);
      discs[grid_index (&g, g.mid_slice, iy, iz)] = (float) value;
    }
  if (with_c1)
    {
      /* SCT's label 2 (C1/C2) at the top of the C2 body, behind the dens */
      int k = scene_index (&sc, sc.body_top[0] - 2);
      double u = -sc.canal_ant - 0.6;
      int iy = (int) lrint ((sc.cy[k] + u * sc.tz[k] - g.y0) / g.dy);
      int iz = (int) lrint ((sc.cz[k] - u * sc.ty[k] - g.z0) / g.dz);
      if (iz > disc_iz[0] && iz < g.nz && iy >= 0 && iy < g.ny)
        discs[grid_index (&g, g.mid_slice, iy, iz)] = 2;
    }

  /* ---- store */
  CsStorage st;
  storage_from_codes (codes, &st);
  pc->image = store_volume (&g, &st, world, image);
  pc->image->datatype = DT_INT16_CODE;
  pc->seg = store_volume (&g, &st, world, seg);
  pc->seg->datatype = DT_UINT8_CODE;
  pc->discs = store_volume (&g, &st, world, discs);
  pc->discs->datatype = DT_UINT8_CODE;
  pc->lesion = store_volume (&g, &st, world, lesion);
  pc->lesion->datatype = DT_UINT8_CODE;

  for (int l = 0; l < sc.n_lesions; l++)
    {
      if (lesion_vox[l] == 0)
        continue;  /* too thin to fill half a voxel anywhere: not a lesion in the truth */
      const CsLesionShape *ls = &sc.lesions[l];
      CsPhantomLesion *pl = &pc->lesions[pc->n_lesions++];
      int k = scene_index (&sc, ls->s);
      double u = sc.cord_u[k] + ls->u;
      pl->segment = ls->segment;
      pl->centre_mm[0] = sc.cord_x[k] + ls->x + world[0];
      pl->centre_mm[1] = sc.cy[k] + u * sc.tz[k] + world[1];
      pl->centre_mm[2] = sc.cz[k] - u * sc.ty[k] + world[2];
      pl->length_mm = 2 * ls->half_len;
      pl->width_mm = 2 * ls->half_ap;
      pl->lateral_mm = 2 * ls->half_lat;
      pl->contrast = ls->contrast;
      pl->voxels = lesion_vox[l];
    }
  pc->cord_level = level;
  pc->csf_level = level * sc.lv.csf;

  g_free (r.value);
  g_free (r.csf);
  g_free (r.cord);
  g_free (r.lesion);
  g_free (r.lesion_id);
  scene_clear (&sc);
  return pc;
}

void
cs_phantom_case_free (CsPhantomCase *pcase)
{
  if (pcase == NULL)
    return;
  g_free (pcase->name);
  g_clear_pointer (&pcase->image, cs_volume_free);
  g_clear_pointer (&pcase->seg, cs_volume_free);
  g_clear_pointer (&pcase->discs, cs_volume_free);
  g_clear_pointer (&pcase->lesion, cs_volume_free);
  g_free (pcase);
}

/* ---------------------------------------------------------------- truth and files */

/* A number with a fixed count of decimals, '.' whatever the locale: stable, readable JSON. */
static void
append_number (GString *out, double v, int decimals)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  char format[8];
  g_snprintf (format, sizeof format, "%%.%df", decimals);
  if (fabs (v) < 0.5 * pow (10, -decimals))
    v = 0;  /* no "-0.00" */
  g_string_append (out, g_ascii_formatd (buf, sizeof buf, format, v));
}

static void
append_bool (GString *out, gboolean v)
{
  g_string_append (out, v ? "true" : "false");
}

char *
cs_phantom_case_truth_json (const CsPhantomCase *pc)
{
  GString *o = g_string_new ("{\n");
  g_string_append_printf (o, "  \"generator\": \"%s\",\n", CS_PHANTOM_GENERATOR_VERSION);
  g_string_append_printf (o, "  \"name\": \"%s\",\n", pc->name);
  g_string_append_printf (o, "  \"seed\": %" G_GUINT64_FORMAT ",\n", pc->seed);
  g_string_append_printf (o, "  \"index\": %u,\n", pc->index);
  g_string_append (o, "  \"abnormal\": ");
  append_bool (o, pc->n_lesions > 0);

  g_string_append (o, ",\n  \"hyperintense_segments\": [");
  gboolean first = TRUE;
  for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
    if (pc->hyperintense[k])
      {
        g_string_append_printf (o, "%s\"%s\"", first ? "" : ", ", segment_names[k]);
        first = FALSE;
      }
  g_string_append (o, "],\n  \"segments\": {\n");
  for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
    g_string_append_printf (o, "    \"%s\": \"%s\"%s\n", segment_names[k],
                            pc->hyperintense[k] ? "hyperintense" : "normal",
                            k + 1 < CS_PHANTOM_N_SEGMENTS ? "," : "");

  g_string_append (o, "  },\n  \"lesions\": [");
  for (guint l = 0; l < pc->n_lesions; l++)
    {
      const CsPhantomLesion *pl = &pc->lesions[l];
      g_string_append_printf (o, "%s\n    {\n      \"segment\": \"%s\",\n      \"centre_mm\": [",
                              l ? "," : "", segment_names[pl->segment]);
      for (int c = 0; c < 3; c++)
        {
          append_number (o, pl->centre_mm[c], 2);
          g_string_append (o, c < 2 ? ", " : "],\n");
        }
      g_string_append (o, "      \"length_mm\": ");
      append_number (o, pl->length_mm, 2);
      g_string_append (o, ",\n      \"width_mm\": ");
      append_number (o, pl->width_mm, 2);
      g_string_append (o, ",\n      \"lateral_mm\": ");
      append_number (o, pl->lateral_mm, 2);
      g_string_append (o, ",\n      \"contrast\": ");
      append_number (o, pl->contrast, 3);
      g_string_append_printf (o, ",\n      \"voxels\": %d\n    }", pl->voxels);
    }
  g_string_append (o, pc->n_lesions ? "\n  ],\n" : "],\n");

  g_string_append (o, "  \"confounders\": {\n");
  for (guint i = 0; i < G_N_ELEMENTS (confounder_names); i++)
    {
      g_string_append_printf (o, "    \"%s\": ", confounder_names[i]);
      append_bool (o, (pc->confounders & (1u << i)) != 0);
      g_string_append (o, i + 1 < G_N_ELEMENTS (confounder_names) ? ",\n" : "\n");
    }
  g_string_append_printf (o, "  },\n  \"orientation\": \"%s\",\n", pc->axcodes);
  g_string_append (o, "  \"cord_intensity\": ");
  append_number (o, pc->cord_level, 1);
  g_string_append (o, ",\n  \"csf_intensity\": ");
  append_number (o, pc->csf_level, 1);
  g_string_append (o, "\n}\n");
  return g_string_free (o, FALSE);
}

gboolean
cs_phantom_case_write (const CsPhantomCase *pc, const char *dir, GError **error)
{
  struct
  {
    const CsVolume *vol;
    const char *suffix;
    int datatype;
  } files[] = {
    { pc->image, ".nii.gz", DT_INT16_CODE },
    { pc->seg, "_seg.nii.gz", DT_UINT8_CODE },
    { pc->discs, "_labels-disc.nii.gz", DT_UINT8_CODE },
    { pc->lesion, "_lesion.nii.gz", DT_UINT8_CODE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *base = g_strconcat (pc->name, files[i].suffix, NULL);
      g_autofree char *path = g_build_filename (dir, base, NULL);
      if (!cs_volume_save (files[i].vol, path, files[i].datatype, error))
        return FALSE;
    }
  g_autofree char *base = g_strconcat (pc->name, "_truth.json", NULL);
  g_autofree char *path = g_build_filename (dir, base, NULL);
  g_autofree char *json = cs_phantom_case_truth_json (pc);
  GError *local = NULL;
  if (!g_file_set_contents (path, json, -1, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot write: %s", path,
                   local->message);
      g_error_free (local);
      return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------- many cases */

typedef struct
{
  const CsPhantomOptions *options;
  const char *dir;
  guint first, count;
  gint next;          /* atomic: next case to make, counted from first */
  GMutex lock;
  GError *error;      /* first error, under lock */
} CsPhantomBatch;

static gpointer
batch_worker (gpointer data)
{
  CsPhantomBatch *batch = data;
  for (;;)
    {
      guint n = (guint) g_atomic_int_add (&batch->next, 1);
      if (n >= batch->count)
        break;
      guint i = batch->first + n;
      g_mutex_lock (&batch->lock);
      gboolean failed = batch->error != NULL;
      g_mutex_unlock (&batch->lock);
      if (failed)
        break;
      g_autoptr (CsPhantomCase) pc = cs_phantom_case_generate (batch->options, i);
      GError *local = NULL;
      if (!cs_phantom_case_write (pc, batch->dir, &local))
        {
          g_mutex_lock (&batch->lock);
          if (batch->error == NULL)
            batch->error = local;
          else
            g_error_free (local);
          g_mutex_unlock (&batch->lock);
          break;
        }
    }
  return NULL;
}

gboolean
cs_phantom_generate (const CsPhantomOptions *options, const char *dir, guint first,
                     guint count, guint n_threads, GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int saved = errno;
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot create folder: %s", dir,
                   g_strerror (saved));
      return FALSE;
    }
  if (n_threads == 0)
    n_threads = g_get_num_processors ();
  n_threads = MAX (1, MIN (n_threads, MAX (count, 1)));

  CsPhantomBatch batch = { .options = options, .dir = dir, .first = first, .count = count,
                           .next = 0 };
  g_mutex_init (&batch.lock);
  GThread **threads = g_new (GThread *, n_threads);
  for (guint t = 0; t < n_threads; t++)
    threads[t] = g_thread_new ("cs-phantom", batch_worker, &batch);
  for (guint t = 0; t < n_threads; t++)
    g_thread_join (threads[t]);
  g_free (threads);
  g_mutex_clear (&batch.lock);
  if (batch.error != NULL)
    {
      g_propagate_error (error, batch.error);
      return FALSE;
    }
  return TRUE;
}

/* ---- a lesion inserted into a real case ------------------------------------------- */

void
cs_lesion_insert_init (CsLesionInsert *insert)
{
  memset (insert, 0, sizeof *insert);
  insert->length_mm = 12.0;
  insert->ap_mm = 5.0;
  insert->lr_mm = 5.0;
  insert->contrast = 0.3;
}

/* In place: a voxel becomes 1 where any voxel within radius voxels along each axis is. */
static void
dilate_box (guint8 *mask, const int dim[3], int radius)
{
  gsize n = (gsize) dim[0] * dim[1] * dim[2];
  g_autofree guint8 *tmp = g_new (guint8, n);
  gsize stride[3] = { 1, (gsize) dim[0], (gsize) dim[0] * dim[1] };
  for (int axis = 0; axis < 3; axis++)
    {
      memcpy (tmp, mask, n);
      for (int k = 0; k < dim[2]; k++)
        for (int j = 0; j < dim[1]; j++)
          for (int i = 0; i < dim[0]; i++)
            {
              int idx[3] = { i, j, k };
              gsize at = i + stride[1] * j + stride[2] * k;
              if (tmp[at])
                continue;
              for (int d = -radius; d <= radius && !mask[at]; d++)
                {
                  int c = idx[axis] + d;
                  if (c >= 0 && c < dim[axis] && tmp[at + (gssize) d * (gssize) stride[axis]])
                    mask[at] = 1;
                }
            }
    }
}

CsVolume *
cs_lesion_insert (CsVolume *image, const CsVolume *seg, const CsLesionInsert *insert,
                  CsLesionInserted *result, GError **error)
{
  gsize n = cs_volume_n_voxels (image);
  if (memcmp (image->dim, seg->dim, sizeof image->dim) != 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: the cord mask's grid %dx%dx%d is not the image's %dx%dx%d",
                   seg->path ? seg->path : "cord mask", seg->dim[0], seg->dim[1], seg->dim[2],
                   image->dim[0], image->dim[1], image->dim[2]);
      return NULL;
    }
  if (!(insert->contrast > 0.0 && insert->contrast <= 1.0) || !(insert->length_mm > 0.0)
      || !(insert->ap_mm > 0.0) || !(insert->lr_mm > 0.0))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                   "lesion: contrast must be in (0, 1] and the sizes positive");
      return NULL;
    }

  /* The cord, its intensity and the CSF's: the 95th percentile of a 4 mm shell around the
   * cord, as bright CSF is what a T2 hyperintensity tends to. */
  g_autofree guint8 *cord = g_new0 (guint8, n);
  g_autofree guint8 *shell = g_new0 (guint8, n);
  double centre[3] = { 0, 0, 0 };
  gsize n_cord = 0;
  for (int k = 0; k < image->dim[2]; k++)
    for (int j = 0; j < image->dim[1]; j++)
      for (int i = 0; i < image->dim[0]; i++)
        {
          gsize at = ((gsize) k * image->dim[1] + j) * image->dim[0] + i;
          if (seg->data[at] > 0.5f)
            {
              cord[at] = shell[at] = 1;
              centre[0] += i, centre[1] += j, centre[2] += k;
              n_cord++;
            }
        }
  if (n_cord == 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY, "%s: the cord mask is empty",
                   seg->path ? seg->path : "cord mask");
      return NULL;
    }
  int radius = MAX (1, (int) lround (4.0 / MIN (image->pixdim[0],
                                                MIN (image->pixdim[1], image->pixdim[2]))));
  dilate_box (shell, image->dim, radius);
  g_autoptr (GArray) around = g_array_new (FALSE, FALSE, sizeof (float));
  for (gsize at = 0; at < n; at++)
    if (shell[at] && !cord[at] && isfinite (image->data[at]))
      g_array_append_val (around, image->data[at]);
  if (around->len == 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: no image around the cord to take the CSF level from",
                   image->path ? image->path : "image");
      return NULL;
    }
  double csf = cs_slice2d_percentile ((const float *) around->data, around->len, 95.0);

  double c_vox[3];
  for (int a = 0; a < 3; a++)
    c_vox[a] = insert->have_centre ? insert->centre_vox[a] : centre[a] / n_cord;
  double c_mm[3];
  for (int r = 0; r < 3; r++)
    c_mm[r] = image->vox2mm[r][0] * c_vox[0] + image->vox2mm[r][1] * c_vox[1]
              + image->vox2mm[r][2] * c_vox[2] + image->vox2mm[r][3];
  /* Semi-axes along the world's x (left-right), y (anterior-posterior), z (superior). */
  double semi[3] = { insert->lr_mm / 2, insert->ap_mm / 2, insert->length_mm / 2 };

  CsVolume *lesion = cs_volume_new_like (image);
  gsize n_lesion = 0;
  for (int k = 0; k < image->dim[2]; k++)
    for (int j = 0; j < image->dim[1]; j++)
      for (int i = 0; i < image->dim[0]; i++)
        {
          gsize at = ((gsize) k * image->dim[1] + j) * image->dim[0] + i;
          if (!cord[at])
            continue;
          double r = 0.0;
          for (int w = 0; w < 3; w++)
            {
              double p = image->vox2mm[w][0] * i + image->vox2mm[w][1] * j
                         + image->vox2mm[w][2] * k + image->vox2mm[w][3];
              double d = (p - c_mm[w]) / semi[w];
              r += d * d;
            }
          if (r >= 1.0)
            continue;
          float v = image->data[at];
          image->data[at] = (float) (v + lesion_weight (r) * insert->contrast * (csf - v));
          lesion->data[at] = 1.0f;
          n_lesion++;
        }
  if (n_lesion == 0)
    {
      cs_volume_free (lesion);
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "lesion: no cord voxel lies within the lesion at voxel (%.1f, %.1f, %.1f)",
                   c_vox[0], c_vox[1], c_vox[2]);
      return NULL;
    }
  if (result)
    {
      memcpy (result->centre_vox, c_vox, sizeof c_vox);
      memcpy (result->centre_mm, c_mm, sizeof c_mm);
      result->csf_level = csf;
      result->voxels = n_lesion;
    }
  return lesion;
}
