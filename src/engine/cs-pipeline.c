/* cs-pipeline.c: detection of one case, end to end (see cs-pipeline.h). */
#include "cs-config.h"
#include "engine/cs-pipeline.h"
#include "engine/cs-backend.h"
#include "engine/cs-mc.h"
#include "engine/cs-metrics.h"
#include "engine/cs-model-file.h"
#include "engine/cs-pipeline-private.h"
#include "io/cs-paths.h"
#include "io/cs-sidecar.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define CS_BUNDLED_MODEL "models/cordscope-u2ad-small.safetensors"
#define CS_NIFTI_FLOAT32 16 /* NIFTI_TYPE_FLOAT32: the engine does not include nifticlib */

const char *
cs_detector_kind_name (CsDetectorKind kind)
{
  return kind == CS_DETECTOR_ZSCORE ? "zscore" : "u2ad";
}

gboolean
cs_detector_kind_from_name (const char *name, CsDetectorKind *kind)
{
  if (g_strcmp0 (name, "u2ad") == 0)
    *kind = CS_DETECTOR_U2AD;
  else if (g_strcmp0 (name, "zscore") == 0)
    *kind = CS_DETECTOR_ZSCORE;
  else
    return FALSE;
  return TRUE;
}

const char *
cs_mc_kind_name (CsMcKind kind)
{
  return kind == CS_MC_RANDOM ? "random" : "balanced";
}

gboolean
cs_mc_kind_from_name (const char *name, CsMcKind *kind)
{
  if (g_strcmp0 (name, "random") == 0)
    *kind = CS_MC_RANDOM;
  else if (g_strcmp0 (name, "balanced") == 0)
    *kind = CS_MC_BALANCED;
  else
    return FALSE;
  return TRUE;
}

/* ---- the model ------------------------------------------------------------------- */

CsPipelineModel *
cs_pipeline_model_load (const char *path, const char *backend, int n_threads, GError **error)
{
  const char *name = backend ? backend : "auto";
  if (g_strcmp0 (name, "auto") != 0 && g_strcmp0 (name, "cpu") != 0
      && g_strcmp0 (name, "cuda") != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "backend '%s' is not auto, cpu or cuda", name);
      return NULL;
    }
  g_autofree char *reason = NULL;
  CsBackend *be = cs_backend_open (name, n_threads, &reason);
  if (be == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "backend %s is not available: %s", name, reason ? reason : "no reason given");
      return NULL;
    }
  CsModel *model = cs_model_load (path, be, error);
  if (model == NULL)
    {
      cs_backend_close (be);
      return NULL;
    }
  CsPipelineModel *pm = g_new0 (CsPipelineModel, 1);
  pm->path = g_strdup (path);
  pm->backend = be;
  pm->backend_note = g_steal_pointer (&reason);  /* with "auto": why CUDA was not used */
  pm->model = model;
  g_mutex_init (&pm->lock);
  return pm;
}

void
cs_pipeline_model_free (CsPipelineModel *model)
{
  if (model == NULL)
    return;
  cs_model_free (model->model);
  cs_backend_close (model->backend);
  g_mutex_clear (&model->lock);
  g_free (model->backend_note);
  g_free (model->path);
  g_free (model);
}

const char *
cs_pipeline_model_path (const CsPipelineModel *model)
{
  return model->path;
}

const char *
cs_pipeline_model_backend_name (const CsPipelineModel *model)
{
  return cs_backend_name (model->backend);
}

const char *
cs_pipeline_model_backend_note (const CsPipelineModel *model)
{
  return model->backend_note;
}

int
cs_pipeline_model_img_size (const CsPipelineModel *model)
{
  return cs_model_get_config (model->model)->img_size;
}

char *
cs_pipeline_model_config_json (const CsPipelineModel *model)
{
  return cs_model_config_to_json (cs_model_get_config (model->model));
}

CsPipelineModel *
cs_pipeline_model_new_preset (const char *preset, const char *backend, int n_threads,
                              guint64 seed, GError **error)
{
  const char *name = backend ? backend : "auto";
  g_autofree char *reason = NULL;
  CsBackend *be = cs_backend_open (name, n_threads, &reason);
  if (be == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "backend %s is not available: %s", name, reason ? reason : "no reason given");
      return NULL;
    }
  CsModelConfig config;
  CsModel *model = cs_model_config_preset (preset, &config, error)
                   ? cs_model_new (&config, be, seed, error) : NULL;
  if (model == NULL)
    {
      cs_backend_close (be);
      return NULL;
    }
  CsPipelineModel *pm = g_new0 (CsPipelineModel, 1);
  pm->path = g_strdup_printf ("preset:%s", preset);
  pm->backend = be;
  pm->backend_note = g_steal_pointer (&reason);  /* with "auto": why CUDA was not used */
  pm->model = model;
  g_mutex_init (&pm->lock);
  return pm;
}

gboolean
cs_pipeline_model_save (CsPipelineModel *model, const char *path, const char *const *extra,
                        GError **error)
{
  g_mutex_lock (&model->lock);
  gboolean ok = cs_model_save (model->model, NULL, path, extra, error);
  g_mutex_unlock (&model->lock);
  return ok;
}

char *
cs_pipeline_bundled_model_path (void)
{
  return cs_data_find (CS_BUNDLED_MODEL);
}

/* ---- preparing a case --------------------------------------------------------------- */

void
cs_case_volumes_clear (CsCaseVolumes *v)
{
  g_clear_pointer (&v->image, cs_volume_free);
  g_clear_pointer (&v->seg, cs_volume_free);
  g_clear_pointer (&v->discs, g_array_unref);
}

gboolean
cs_case_volumes_load (const CsCase *cs_case, CsCaseVolumes *v, GError **error)
{
  memset (v, 0, sizeof *v);
  if (cs_case->seg_path == NULL)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: no cord mask (NAME_seg): the detector needs the cord", cs_case->image_path);
      return FALSE;
    }
  v->image = cs_volume_load (cs_case->image_path, error);
  if (v->image == NULL)
    return FALSE;
  v->seg = cs_volume_load (cs_case->seg_path, error);
  if (v->seg == NULL)
    {
      cs_case_volumes_clear (v);
      return FALSE;
    }
  if (memcmp (v->seg->dim, v->image->dim, sizeof v->seg->dim) != 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY, "%s: not on the grid of %s",
                   cs_case->seg_path, cs_case->image_path);
      cs_case_volumes_clear (v);
      return FALSE;
    }
  if (cs_case->discs_path != NULL)
    {
      /* Unusable disc labels cost the segments, not the detection. */
      g_autoptr (GError) local = NULL;
      v->discs = cs_discs_read (cs_case->discs_path, CS_LABEL_FILE_DISCS, v->image, &local);
      if (v->discs == NULL)
        g_debug ("%s", local->message);
    }
  return TRUE;
}

guint8 *
cs_dilate_mask (const float *mask, int size, int r, gsize *n_set)
{
  guint8 *out = g_new0 (guint8, (gsize) size * size);
  gsize n = 0;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      {
        gboolean hit = FALSE;
        for (int dy = -r; dy <= r && !hit; dy++)
          for (int dx = -r; dx <= r && !hit; dx++)
            {
              int yy = y + dy, xx = x + dx;
              hit = dx * dx + dy * dy <= r * r && yy >= 0 && yy < size && xx >= 0
                    && xx < size && mask[yy * size + xx] > 0.5f;
            }
        out[y * size + x] = hit;
        n += hit;
      }
  if (n_set)
    *n_set = n;
  return out;
}

guint8 *
cs_scored_cord_mask (const CsSlice2d *slice, int inset_px)
{
  gsize HW = (gsize) slice->size * slice->size;
  g_autofree guint8 *whole = g_new0 (guint8, HW);
  for (gsize i = 0; i < HW; i++)
    whole[i] = slice->roi[i] > 0.5f;
  guint8 *cord = g_new0 (guint8, HW);
  cs_cord_interior (whole, slice->size, slice->size, inset_px, cord);
  return cord;
}

int
cs_middle_cord_slices (const CsVolume *image, const CsVolume *seg, int *slices, int n)
{
  int axis = cs_volume_sagittal_axis (image);
  int n_slices = seg->dim[axis];
  g_autofree gsize *area = g_new0 (gsize, n_slices);
  for (int k = 0; k < seg->dim[2]; k++)
    for (int j = 0; j < seg->dim[1]; j++)
      for (int i = 0; i < seg->dim[0]; i++)
        if (cs_volume_at (seg, i, j, k) > 0.5f)
          area[axis == 0 ? i : axis == 1 ? j : k]++;
  int centre = cs_case_default_slice (image, seg);
  int found = 0;
  for (int d = 0; d < n_slices && found < n; d++)
    for (int sign = -1; sign <= 1 && found < n; sign += 2)
      {
        int s = centre + (sign < 0 ? -d : d);
        if ((d == 0 && sign > 0) || s < 0 || s >= n_slices || area[s] == 0)
          continue;
        slices[found++] = s;
      }
  for (int a = 1; a < found; a++)
    for (int b = a; b > 0 && slices[b - 1] > slices[b]; b--)
      {
        int t = slices[b];
        slices[b] = slices[b - 1];
        slices[b - 1] = t;
      }
  return found;
}

void
cs_prepared_slice_clear (CsPreparedSlice *p)
{
  g_clear_pointer (&p->slice, cs_slice2d_free);
  g_clear_pointer (&p->roi, g_free);
}

gboolean
cs_prepare_slice (const CsCase *cs_case, const CsCaseVolumes *v, int slice, int size,
                  CsPreparedSlice *out, GError **error)
{
  memset (out, 0, sizeof *out);
  out->slice = cs_slice2d_new (v->image, v->seg, slice, size, error);
  if (out->slice == NULL)
    return FALSE;
  if (out->slice->roi == NULL)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY, "%s: no cord on slice %d",
                   cs_case->seg_path, slice);
      cs_prepared_slice_clear (out);
      return FALSE;
    }
  out->roi = cs_dilate_mask (out->slice->roi, size, CS_PIPELINE_ROI_DILATION_PX, &out->n_roi);
  if (out->n_roi == 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY, "%s: no cord on slice %d",
                   cs_case->seg_path, slice);
      cs_prepared_slice_clear (out);
      return FALSE;
    }
  for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
    out->spans[s].present = FALSE;
  if (v->discs == NULL)
    return TRUE;

  g_autoptr (CsSagittal) view = cs_volume_extract_sagittal (v->image, slice);
  g_autoptr (GError) local = NULL;
  if (!cs_segments_compute (v->discs, view, cs_case->discs_path, out->display, &local))
    {
      g_debug ("%s", local->message);
      return TRUE;
    }
  /* The disc centroids on the grid give the segments' grid rows. */
  double rows[CS_PIPELINE_N_SEGMENTS];
  for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
    rows[s] = NAN;
  for (guint i = 0; i < v->discs->len; i++)
    {
      const CsDisc *d = &g_array_index (v->discs, CsDisc, i);
      if (d->value < CS_SEGMENT_FIRST_DISC || d->value > CS_SEGMENT_LAST_DISC)
        continue;
      double col, row, u, gv;
      cs_sagittal_voxel_to_display (view, d->voxel, &col, &row);
      cs_slice2d_px_to_grid (out->slice, col, row, &u, &gv);
      rows[d->value - CS_SEGMENT_FIRST_DISC] = gv;
    }
  if (!cs_segments_from_disc_rows (rows, size, out->spans, &local))
    {
      g_debug ("%s", local->message);
      return TRUE;
    }
  out->have_segments = TRUE;
  return TRUE;
}

/* ---- detection -------------------------------------------------------------------- */

void
cs_detect_options_init (CsDetectOptions *options)
{
  memset (options, 0, sizeof *options);
  options->detector = CS_DETECTOR_U2AD;
  options->k = 10;
  options->schedule = CS_MC_BALANCED;
  options->slice = -1;
  options->seed = 0;
  options->volume_maps = TRUE;
  options->grid_size = CS_SLICE2D_DEFAULT_SIZE;
  options->positive_only = TRUE;
  options->cord_only = TRUE;
  options->cord_inset_px = CS_DETECT_DEFAULT_CORD_INSET_PX;
  options->patient_over_segments = CS_DETECT_DEFAULT_PATIENT_OVER_SEGMENTS;
}

void
cs_detection_free (CsDetection *d)
{
  if (d == NULL)
    return;
  g_free (d->case_name);
  g_free (d->image_path);
  g_free (d->backend);
  g_free (d->model_path);
  cs_slice2d_free (d->slice);
  g_free (d->roi);
  g_free (d->curve);
  g_free (d->anomaly);
  g_free (d->eu);
  g_free (d->au);
  g_free (d->mean);
  if (d->anomaly_volume)
    cs_volume_free (d->anomaly_volume);
  if (d->eu_volume)
    cs_volume_free (d->eu_volume);
  if (d->au_volume)
    cs_volume_free (d->au_volume);
  if (d->mean_volume)
    cs_volume_free (d->mean_volume);
  g_free (d);
}

static double
seconds_since (gint64 *t)
{
  gint64 now = g_get_monotonic_time ();
  double s = (now - *t) / 1e6;
  *t = now;
  return s;
}

static void
report (CsPipelineProgressFunc progress, gpointer user_data, const char *stage, double f)
{
  if (progress)
    progress (stage, f, user_data);
}

CsDetection *
cs_pipeline_detect_case (const CsCase *cs_case, CsPipelineModel *model,
                         const CsDetectOptions *options, GCancellable *cancellable,
                         CsPipelineProgressFunc progress, gpointer user_data, GError **error)
{
  CsDetectOptions defaults;
  if (options == NULL)
    {
      cs_detect_options_init (&defaults);
      options = &defaults;
    }
  gboolean u2ad = options->detector == CS_DETECTOR_U2AD;
  if (u2ad && model == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: the u2ad detector needs a model", cs_case->image_path);
      return NULL;
    }
  if (u2ad && options->k < 1)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "K must be >= 1 (got %d)", options->k);
      return NULL;
    }
  int size = u2ad ? cs_pipeline_model_img_size (model) : options->grid_size;
  if (size < 16)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "grid size %d is too small", size);
      return NULL;
    }
  gint64 t_start = g_get_monotonic_time (), t = t_start;
  report (progress, user_data, "load", 0.0);

  CsCaseVolumes v;
  if (!cs_case_volumes_load (cs_case, &v, error))
    return NULL;
  g_autoptr (CsDetection) d = g_new0 (CsDetection, 1);
  d->timings.load_s = seconds_since (&t);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      cs_case_volumes_clear (&v);
      return NULL;
    }
  report (progress, user_data, "slice", 0.1);

  int n_slices = cs_volume_n_sagittal_slices (v.image);
  int slice = options->slice >= 0 ? options->slice : cs_case_default_slice (v.image, v.seg);
  if (slice >= n_slices)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: slice %d is out of range (the volume has %d sagittal slices)",
                   cs_case->image_path, slice, n_slices);
      cs_case_volumes_clear (&v);
      return NULL;
    }
  CsPreparedSlice prep;
  if (!cs_prepare_slice (cs_case, &v, slice, size, &prep, error))
    {
      cs_case_volumes_clear (&v);
      return NULL;
    }
  d->case_name = g_strdup (cs_case->name);
  d->image_path = g_strdup (cs_case->image_path);
  d->detector = options->detector;
  d->backend = g_strdup (u2ad ? cs_pipeline_model_backend_name (model) : "none");
  d->model_path = u2ad ? g_strdup (model->path) : NULL;
  d->k = u2ad ? options->k : 0;
  d->schedule = options->schedule;
  d->positive_only = u2ad && options->positive_only;
  d->cord_only = options->cord_only;
  d->cord_inset_px = options->cord_only ? MAX (options->cord_inset_px, 0) : 0;
  d->slice_index = slice;
  d->size = size;
  d->slice = g_steal_pointer (&prep.slice);
  d->roi = g_steal_pointer (&prep.roi);
  d->have_segments = prep.have_segments;
  d->mse = d->psnr = d->ssim = d->mean_eu = NAN;
  d->timings.slice_s = seconds_since (&t);
  report (progress, user_data, "inference", 0.2);

  gsize HW = (gsize) size * size;
  const float *image = d->slice->image;
  d->anomaly = g_new0 (float, HW);
  if (u2ad)
    {
      d->eu = g_new0 (float, HW);
      d->au = g_new0 (float, HW);
      d->mean = g_new0 (float, HW);
      CsMcStats stats = { 0 };
      g_mutex_lock (&model->lock);
      gboolean ok = cs_mc_infer (model->model, image, d->roi, options->k,
                                 options->schedule == CS_MC_RANDOM ? CS_MC_SCHEDULE_RANDOM
                                 : CS_MC_SCHEDULE_BALANCED, options->seed, cancellable,
                                 d->mean, d->eu, d->au, NULL, &stats, error);
      g_mutex_unlock (&model->lock);
      if (!ok)
        {
          g_prefix_error (error, "%s: ", cs_case->image_path);
          cs_case_volumes_clear (&v);
          return NULL;
        }
      d->n_passes = stats.n_passes;
      if (options->positive_only)
        for (gsize i = 0; i < HW; i++)
          d->anomaly[i] = d->roi[i] ? MAX (image[i] - d->mean[i], 0.0f) : 0.0f;
      else
        memcpy (d->anomaly, d->au, HW * sizeof (float));
      d->mse = cs_mse (d->mean, image, d->roi, HW);
      d->psnr = cs_psnr (d->mean, image, d->roi, HW);
      d->ssim = cs_ssim (d->mean, image, size, size, d->roi);
      d->mean_eu = cs_mean_in_mask (d->eu, d->roi, HW);
    }
  else
    cs_zscore_map (image, d->roi, HW, d->anomaly);
  d->timings.inference_s = seconds_since (&t);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      cs_case_volumes_clear (&v);
      return NULL;
    }
  report (progress, user_data, "postprocess", 0.8);

  d->curve = g_new0 (float, size);
  double scores[CS_PIPELINE_N_SEGMENTS];
  g_autofree guint8 *cord = NULL;
  if (options->cord_only)
    {
      /* Lesions lie in the cord: the rim of CSF the ROI adds only carries edge errors. */
      cord = cs_scored_cord_mask (d->slice, d->cord_inset_px);
      for (gsize i = 0; i < HW; i++)
        if (!cord[i])
          d->anomaly[i] = 0.0f;
    }
  d->patient_score = cs_detection_score (d->anomaly, cord ? cord : d->roi, size, size, prep.spans,
                                         d->have_segments ? CS_PIPELINE_N_SEGMENTS : 0,
                                         d->curve, scores);
  if (options->patient_over_segments && d->have_segments)
    {
      double over_segments = cs_patient_score_segments (d->curve, size, prep.spans,
                                                        CS_PIPELINE_N_SEGMENTS);
      if (!isnan (over_segments))
        {
          d->patient_score = over_segments;
          d->patient_over_segments = TRUE;
        }
    }
  for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
    {
      CsDetectionSegment *seg = &d->segments[s];
      seg->name = cs_segment_names[s];
      seg->present = d->have_segments && prep.spans[s].present;
      seg->score = seg->present ? scores[s] : NAN;
      if (seg->present)
        {
          seg->grid_row_start = prep.spans[s].row_start;
          seg->grid_row_end = prep.spans[s].row_end;
          seg->row_start = prep.display[s].row_start;
          seg->row_end = prep.display[s].row_end;
        }
    }
  d->timings.postprocess_s = seconds_since (&t);

  if (options->volume_maps)
    {
      report (progress, user_data, "maps", 0.9);
      d->anomaly_volume = cs_slice2d_map_to_volume (d->slice, d->anomaly);
      if (u2ad)
        {
          d->eu_volume = cs_slice2d_map_to_volume (d->slice, d->eu);
          d->au_volume = cs_slice2d_map_to_volume (d->slice, d->au);
          /* The mean reconstruction in the source's intensities: the inverse of the clip
           * and min-max, so it reads like the image it reconstructs. */
          g_autofree float *scaled = g_new (float, HW);
          double lo = d->slice->clip_lo, span = d->slice->clip_hi - d->slice->clip_lo;
          for (gsize i = 0; i < HW; i++)
            scaled[i] = (float) (lo + span * d->mean[i]);
          d->mean_volume = cs_slice2d_map_to_volume (d->slice, scaled);
        }
      d->timings.maps_s = seconds_since (&t);
    }
  cs_case_volumes_clear (&v);
  d->timings.total_s = (g_get_monotonic_time () - t_start) / 1e6;
  report (progress, user_data, "done", 1.0);
  return g_steal_pointer (&d);
}

/* ---- output ----------------------------------------------------------------------- */

static void
add_number (JsonBuilder *b, const char *name, double value)
{
  json_builder_set_member_name (b, name);
  if (isfinite (value))
    json_builder_add_double_value (b, value);
  else
    json_builder_add_null_value (b);
}

char *
cs_detection_to_json (const CsDetection *d)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gboolean u2ad = d->detector == CS_DETECTOR_U2AD;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, "cordscope-detection");
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "case");
  json_builder_add_string_value (b, d->case_name);
  json_builder_set_member_name (b, "image");
  json_builder_add_string_value (b, d->image_path);
  json_builder_set_member_name (b, "detector");
  json_builder_add_string_value (b, cs_detector_kind_name (d->detector));
  json_builder_set_member_name (b, "backend");
  json_builder_add_string_value (b, d->backend);
  json_builder_set_member_name (b, "model");
  if (d->model_path)
    json_builder_add_string_value (b, d->model_path);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "k");
  json_builder_add_int_value (b, d->k);
  json_builder_set_member_name (b, "schedule");
  if (u2ad)
    json_builder_add_string_value (b, cs_mc_kind_name (d->schedule));
  else
    json_builder_add_null_value (b);
  /* What the anomaly map is and where it is scored. */
  json_builder_set_member_name (b, "anomaly");
  json_builder_add_string_value (b, !u2ad ? "zscore" : d->positive_only ? "positive-residual"
                                 : "au");
  json_builder_set_member_name (b, "scored_on");
  json_builder_add_string_value (b, d->cord_only ? "cord" : "roi");
  json_builder_set_member_name (b, "cord_inset_px");
  json_builder_add_int_value (b, d->cord_inset_px);
  json_builder_set_member_name (b, "patient_over");
  json_builder_add_string_value (b, d->patient_over_segments ? "segments" : "cord");
  json_builder_set_member_name (b, "passes");
  json_builder_add_int_value (b, d->n_passes);
  json_builder_set_member_name (b, "slice");
  json_builder_add_int_value (b, d->slice_index);
  json_builder_set_member_name (b, "grid_size");
  json_builder_add_int_value (b, d->size);
  /* Grid row v lies on display row (v + offset) / spacing: enough to draw the curve
   * beside the display slice. */
  json_builder_set_member_name (b, "grid_to_display_rows");
  json_builder_begin_object (b);
  add_number (b, "offset_mm", d->slice->offset[1]);
  add_number (b, "mm_per_row", d->slice->spacing[1]);
  json_builder_end_object (b);
  add_number (b, "patient_score", d->patient_score);
  json_builder_set_member_name (b, "segments");
  json_builder_begin_array (b);
  for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
    {
      const CsDetectionSegment *seg = &d->segments[s];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, seg->name);
      json_builder_set_member_name (b, "present");
      json_builder_add_boolean_value (b, seg->present);
      add_number (b, "score", seg->present ? seg->score : NAN);
      add_number (b, "row_start", seg->present ? seg->row_start : NAN);
      add_number (b, "row_end", seg->present ? seg->row_end : NAN);
      json_builder_set_member_name (b, "grid_row_start");
      if (seg->present)
        json_builder_add_int_value (b, seg->grid_row_start);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "grid_row_end");
      if (seg->present)
        json_builder_add_int_value (b, seg->grid_row_end);
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "curve");
  json_builder_begin_array (b);
  for (int r = 0; r < d->size; r++)
    json_builder_add_double_value (b, d->curve[r]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "reconstruction");
  json_builder_begin_object (b);
  add_number (b, "mse", d->mse);
  add_number (b, "psnr", d->psnr);
  add_number (b, "ssim", d->ssim);
  add_number (b, "mean_eu", d->mean_eu);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "timings");
  json_builder_begin_object (b);
  add_number (b, "load_s", d->timings.load_s);
  add_number (b, "slice_s", d->timings.slice_s);
  add_number (b, "inference_s", d->timings.inference_s);
  add_number (b, "postprocess_s", d->timings.postprocess_s);
  add_number (b, "maps_s", d->timings.maps_s);
  add_number (b, "total_s", d->timings.total_s);
  json_builder_end_object (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

gboolean
cs_detection_write_maps (const CsDetection *d, const char *dir, GError **error)
{
  if (d->anomaly_volume == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: the detection was run without volume maps", d->case_name);
      return FALSE;
    }
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot create the folder: %s",
                   dir, g_strerror (errno));
      return FALSE;
    }
  const struct { const char *suffix; const CsVolume *vol; } maps[] = {
    { "anomaly", d->anomaly_volume }, { "eu", d->eu_volume },
    { "au", d->au_volume }, { "mean", d->mean_volume },
  };
  for (guint i = 0; i < G_N_ELEMENTS (maps); i++)
    {
      if (maps[i].vol == NULL)
        continue;
      g_autofree char *name = g_strdup_printf ("%s_%s.nii.gz", d->case_name, maps[i].suffix);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (!cs_volume_save (maps[i].vol, path, CS_NIFTI_FLOAT32, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- truth ------------------------------------------------------------------------ */

static gboolean
truth_from_json (const char *path, CsCaseTruth *truth, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  if (!json_parser_load_from_file (parser, path, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT, "%s: %s", path, local->message);
      return FALSE;
    }
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonNode *segs = o ? json_object_get_member (o, "segments") : NULL;
  if (segs == NULL || !JSON_NODE_HOLDS_OBJECT (segs))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: no \"segments\" object of segment labels", path);
      return FALSE;
    }
  JsonObject *so = json_node_get_object (segs);
  truth->known = TRUE;
  truth->abnormal = FALSE;
  for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
    {
      JsonNode *n = json_object_get_member (so, cs_segment_names[s]);
      const char *label = n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_string (n) : NULL;
      truth->segment[s] = g_strcmp0 (label, "hyperintense") == 0 ? 1
                          : g_strcmp0 (label, "normal") == 0 ? 0 : -1;
      truth->abnormal |= truth->segment[s] == 1;
    }
  return TRUE;
}

gboolean
cs_case_truth_read (const CsCase *cs_case, CsCaseTruth *truth, GError **error)
{
  memset (truth, 0, sizeof *truth);
  for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
    truth->segment[s] = -1;
  if (cs_case->truth_path != NULL)
    return truth_from_json (cs_case->truth_path, truth, error);
  if (cs_case->sidecar_path == NULL)
    return TRUE;
  g_autoptr (CsSidecar) sidecar = cs_sidecar_load (cs_case->sidecar_path, error);
  if (sidecar == NULL)
    return FALSE;
  for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
    {
      CsSegmentLabel l = sidecar->segments[s].label;
      truth->segment[s] = l == CS_SEGMENT_LABEL_HYPERINTENSE ? 1
                          : l == CS_SEGMENT_LABEL_NORMAL ? 0 : -1;
      truth->known |= truth->segment[s] >= 0;
      truth->abnormal |= truth->segment[s] == 1;
    }
  return TRUE;
}

/* ---- evaluation ------------------------------------------------------------------- */

void
cs_evaluation_free (CsEvaluation *e)
{
  if (e == NULL)
    return;
  for (int i = 0; i < e->n_cases; i++)
    g_free (e->names[i]);
  g_free (e->names);
  g_free (e->patient_score);
  g_free (e->patient_truth);
  g_free (e->fold);
  g_free (e->segment_score);
  g_free (e->segment_truth);
  g_free (e->patient_why);
  g_free (e->segment_why);
  g_free (e->patient);
  g_free (e->segment);
  g_free (e->backend);
  g_free (e->model_path);
  g_free (e);
}

static double
mean_finite (const double *v, int n)
{
  double sum = 0;
  int m = 0;
  for (int i = 0; i < n; i++)
    if (isfinite (v[i]))
      {
        sum += v[i];
        m++;
      }
  return m ? sum / m : NAN;
}

CsEvaluation *
cs_pipeline_evaluate (GPtrArray *cases, CsPipelineModel *model, const CsDetectOptions *options,
                      int n_folds, guint32 seed, GCancellable *cancellable,
                      CsPipelineProgressFunc progress, gpointer user_data, GError **error)
{
  CsDetectOptions opts;
  if (options)
    opts = *options;
  else
    cs_detect_options_init (&opts);
  opts.volume_maps = FALSE;  /* scores only */
  if (n_folds < 2 || n_folds > CS_CV_MAX_FOLDS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "folds must be 2..%d (got %d)", CS_CV_MAX_FOLDS, n_folds);
      return NULL;
    }
  g_autoptr (CsEvaluation) e = g_new0 (CsEvaluation, 1);
  guint n = cases->len;
  e->names = g_new0 (char *, n);
  e->patient_score = g_new (double, n);
  e->patient_truth = g_new0 (guint8, n);
  e->fold = g_new0 (int, n);
  e->segment_score = g_new (double, (gsize) n * CS_PIPELINE_N_SEGMENTS);
  e->segment_truth = g_new (gint8, (gsize) n * CS_PIPELINE_N_SEGMENTS);
  e->n_folds = n_folds;
  e->detector = opts.detector;
  e->k = opts.detector == CS_DETECTOR_U2AD ? opts.k : 0;
  e->schedule = opts.schedule;
  e->backend = g_strdup (opts.detector == CS_DETECTOR_U2AD && model
                         ? cs_pipeline_model_backend_name (model) : "none");
  e->model_path = opts.detector == CS_DETECTOR_U2AD && model ? g_strdup (model->path) : NULL;
  g_autofree double *mse = g_new (double, n), *psnr = g_new (double, n);
  g_autofree double *ssim = g_new (double, n), *meu = g_new (double, n);
  double detect_s = 0;

  for (guint c = 0; c < n; c++)
    {
      const CsCase *cs_case = g_ptr_array_index (cases, c);
      if (progress)
        progress ("detect", (double) c / n, user_data);
      CsCaseTruth truth;
      g_autoptr (GError) local = NULL;
      if (!cs_case_truth_read (cs_case, &truth, &local) || !truth.known)
        {
          g_printerr ("evaluate: %s skipped: %s\n", cs_case->name,
                      local ? local->message : "no truth (NAME_truth.json or segment labels)");
          e->n_skipped++;
          continue;
        }
      g_autoptr (CsDetection) d = cs_pipeline_detect_case (cs_case, model, &opts, cancellable,
                                                           NULL, NULL, &local);
      if (d == NULL)
        {
          if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            {
              g_propagate_error (error, g_steal_pointer (&local));
              return NULL;
            }
          g_printerr ("evaluate: %s skipped: %s\n", cs_case->name, local->message);
          e->n_skipped++;
          continue;
        }
      int i = e->n_cases++;
      e->names[i] = g_strdup (cs_case->name);
      e->patient_score[i] = d->patient_score;
      e->patient_truth[i] = truth.abnormal;
      for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
        {
          e->segment_score[i * CS_PIPELINE_N_SEGMENTS + s] = d->segments[s].score;
          e->segment_truth[i * CS_PIPELINE_N_SEGMENTS + s] = truth.segment[s];
        }
      mse[i] = d->mse;
      psnr[i] = d->psnr;
      ssim[i] = d->ssim;
      meu[i] = d->mean_eu;
      detect_s += d->timings.total_s;
    }
  if (progress)
    progress ("detect", 1.0, user_data);
  if (e->n_cases == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "no case with ground truth could be detected (%u cases, %d skipped)", n,
                   e->n_skipped);
      return NULL;
    }
  e->mse = mean_finite (mse, e->n_cases);
  e->psnr = mean_finite (psnr, e->n_cases);
  e->ssim = mean_finite (ssim, e->n_cases);
  e->mean_eu = mean_finite (meu, e->n_cases);
  e->detect_s = detect_s / e->n_cases;

  cs_stratified_folds (e->patient_truth, e->n_cases, n_folds, seed, e->fold);
  g_autoptr (GError) local = NULL;
  e->patient = g_new0 (CsCvResult, 1);
  e->patient_ok = cs_cv_evaluate (e->patient_score, e->patient_truth, e->fold, e->n_cases,
                                  n_folds, CS_THRESHOLD_RECALL, 0.9, e->patient, &local);
  if (!e->patient_ok)
    {
      e->patient_why = g_strdup (local->message);
      g_clear_pointer (&e->patient, g_free);
      g_clear_error (&local);
    }
  /* Segment items: known truth and a present segment; each takes its patient's fold. */
  int m = 0;
  gsize cap = (gsize) e->n_cases * CS_PIPELINE_N_SEGMENTS;
  g_autofree double *ss = g_new (double, cap);
  g_autofree guint8 *st = g_new (guint8, cap);
  g_autofree int *sf = g_new (int, cap);
  for (int i = 0; i < e->n_cases; i++)
    for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
      {
        double score = e->segment_score[i * CS_PIPELINE_N_SEGMENTS + s];
        int t = e->segment_truth[i * CS_PIPELINE_N_SEGMENTS + s];
        if (t < 0 || !isfinite (score))
          continue;
        ss[m] = score;
        st[m] = t;
        sf[m] = e->fold[i];
        m++;
      }
  e->n_segments = m;
  e->segment = g_new0 (CsCvResult, 1);
  e->segment_ok = m > 0 && cs_cv_evaluate (ss, st, sf, m, n_folds, CS_THRESHOLD_F1, 0.9,
                                           e->segment, &local);
  if (!e->segment_ok)
    {
      e->segment_why = g_strdup (local ? local->message : "no segment with truth and a score");
      g_clear_pointer (&e->segment, g_free);
    }
  return g_steal_pointer (&e);
}

static void
add_mean_sd (JsonBuilder *b, const char *name, const CsMeanSd *v)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  add_number (b, "mean", v->n ? v->mean : NAN);
  add_number (b, "sd", v->n ? v->sd : NAN);
  json_builder_set_member_name (b, "folds");
  json_builder_add_int_value (b, v->n);
  json_builder_end_object (b);
}

static void
add_cv (JsonBuilder *b, const char *name, const CsCvResult *cv, const char *why, int n_items)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "items");
  json_builder_add_int_value (b, n_items);
  if (cv == NULL)
    {
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, why ? why : "not evaluated");
      json_builder_end_object (b);
      return;
    }
  add_mean_sd (b, "accuracy", &cv->accuracy);
  add_mean_sd (b, "f1", &cv->f1);
  add_mean_sd (b, "recall", &cv->recall);
  add_mean_sd (b, "specificity", &cv->specificity);
  add_number (b, "auc", cv->auc);
  json_builder_set_member_name (b, "thresholds");
  json_builder_begin_array (b);
  for (int f = 0; f < cv->n_folds; f++)
    json_builder_add_double_value (b, cv->threshold[f]);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

char *
cs_evaluation_to_json (const CsEvaluation *e)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, "cordscope-evaluation");
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "detector");
  json_builder_add_string_value (b, cs_detector_kind_name (e->detector));
  json_builder_set_member_name (b, "backend");
  json_builder_add_string_value (b, e->backend);
  json_builder_set_member_name (b, "model");
  if (e->model_path)
    json_builder_add_string_value (b, e->model_path);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "k");
  json_builder_add_int_value (b, e->k);
  json_builder_set_member_name (b, "schedule");
  json_builder_add_string_value (b, cs_mc_kind_name (e->schedule));
  json_builder_set_member_name (b, "folds");
  json_builder_add_int_value (b, e->n_folds);
  json_builder_set_member_name (b, "cases");
  json_builder_add_int_value (b, e->n_cases);
  json_builder_set_member_name (b, "skipped");
  json_builder_add_int_value (b, e->n_skipped);
  int abnormal = 0;
  for (int i = 0; i < e->n_cases; i++)
    abnormal += e->patient_truth[i];
  json_builder_set_member_name (b, "abnormal_cases");
  json_builder_add_int_value (b, abnormal);
  add_cv (b, "patient", e->patient, e->patient_why, e->n_cases);
  add_cv (b, "segment", e->segment, e->segment_why, e->n_segments);
  json_builder_set_member_name (b, "reconstruction");
  json_builder_begin_object (b);
  add_number (b, "mse", e->mse);
  add_number (b, "psnr", e->psnr);
  add_number (b, "ssim", e->ssim);
  add_number (b, "mean_eu", e->mean_eu);
  json_builder_end_object (b);
  add_number (b, "detect_s_per_case", e->detect_s);
  json_builder_set_member_name (b, "per_case");
  json_builder_begin_array (b);
  for (int i = 0; i < e->n_cases; i++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "case");
      json_builder_add_string_value (b, e->names[i]);
      json_builder_set_member_name (b, "fold");
      json_builder_add_int_value (b, e->fold[i]);
      json_builder_set_member_name (b, "abnormal");
      json_builder_add_boolean_value (b, e->patient_truth[i]);
      add_number (b, "patient_score", e->patient_score[i]);
      json_builder_set_member_name (b, "segment_scores");
      json_builder_begin_array (b);
      for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
        {
          double v = e->segment_score[i * CS_PIPELINE_N_SEGMENTS + s];
          if (isfinite (v))
            json_builder_add_double_value (b, v);
          else
            json_builder_add_null_value (b);
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "segment_truth");
      json_builder_begin_array (b);
      for (int s = 0; s < CS_PIPELINE_N_SEGMENTS; s++)
        {
          int t = e->segment_truth[i * CS_PIPELINE_N_SEGMENTS + s];
          if (t >= 0)
            json_builder_add_int_value (b, t);
          else
            json_builder_add_null_value (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

static void
table_row (GString *out, const char *level, const CsCvResult *cv, const char *why)
{
  if (cv == NULL)
    {
      g_string_append_printf (out, "%-8s  not evaluated: %s\n", level, why ? why : "?");
      return;
    }
  const CsMeanSd *v[] = { &cv->accuracy, &cv->f1, &cv->recall, &cv->specificity };
  g_string_append_printf (out, "%-8s", level);
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    if (v[i]->n)
      g_string_append_printf (out, "  %5.3f +- %5.3f", v[i]->mean, v[i]->sd);
    else
      g_string_append_printf (out, "  %14s", "n/a");
  g_string_append_printf (out, "  %5.3f\n", cv->auc);
}

char *
cs_evaluation_table (const CsEvaluation *e)
{
  GString *out = g_string_new (NULL);
  int abnormal = 0;
  for (int i = 0; i < e->n_cases; i++)
    abnormal += e->patient_truth[i];
  g_string_append_printf (out, "detector %s%s%s, %d cases (%d abnormal), %d segments, "
                          "%d-fold CV\n", cs_detector_kind_name (e->detector),
                          e->model_path ? ", model " : "", e->model_path ? e->model_path : "",
                          e->n_cases, abnormal, e->n_segments, e->n_folds);
  g_string_append_printf (out, "%-8s  %-14s  %-14s  %-14s  %-14s  %s\n", "level", "accuracy",
                          "F1", "recall", "specificity", "AUC");
  table_row (out, "patient", e->patient, e->patient_why);
  table_row (out, "segment", e->segment, e->segment_why);
  if (e->detector == CS_DETECTOR_U2AD)
    g_string_append_printf (out, "reconstruction (ROI): PSNR %.2f dB, SSIM %.4f, MSE %.3g, "
                            "mean EU %.3g\n", e->psnr, e->ssim, e->mse, e->mean_eu);
  g_string_append_printf (out, "patient: threshold at sensitivity 0.9; segment: F1-optimal "
                          "threshold; both chosen on the other folds. %.3f s per case\n",
                          e->detect_s);
  return g_string_free (out, FALSE);
}
