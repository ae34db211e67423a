/* cs-case-loader.c: case discovery and volume reading in a GTask thread. */
#include "cs-config.h"

#include <glib/gi18n.h>

#include "io/cs-labels.h"
#include "cs-case-loader.h"

void
cs_loaded_case_free (CsLoadedCase *loaded)
{
  if (loaded == NULL)
    return;
  g_free (loaded->name);
  g_free (loaded->image_path);
  g_clear_pointer (&loaded->cases, g_ptr_array_unref);
  g_clear_pointer (&loaded->volume, cs_volume_free);
  g_clear_pointer (&loaded->seg, cs_volume_free);
  g_clear_pointer (&loaded->lesion, cs_volume_free);
  g_clear_pointer (&loaded->discs, g_array_unref);
  g_clear_pointer (&loaded->sagittal, cs_sagittal_free);
  g_free (loaded);
}

gboolean
cs_case_is_labelled (const CsCase *c)
{
  return c->lesion_path != NULL || c->truth_path != NULL || c->sidecar_path != NULL;
}

/* A label volume that cannot be read, or lies on another grid, costs that layer only. */
static CsVolume *
load_label_volume (const char     *path,
                   const CsVolume *image)
{
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return NULL;
  g_autoptr(CsVolume) labels = cs_volume_load (path, &error);
  if (labels == NULL)
    {
      g_warning ("Ignoring %s: %s", path, error->message);
      return NULL;
    }
  for (int i = 0; i < 3; i++)
    if (labels->dim[i] != image->dim[i])
      {
        g_warning ("Ignoring %s: its grid is not the image's", path);
        return NULL;
      }
  return g_steal_pointer (&labels);
}

static CsLoadedCase *
cs_case_loader_load_case (GPtrArray     *cases,
                          guint          index,
                          GCancellable  *cancellable,
                          GError       **error)
{
  const CsCase *c = g_ptr_array_index (cases, index);
  g_autoptr(CsVolume) volume = cs_volume_load (c->image_path, error);
  if (volume == NULL)
    return NULL;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  g_autoptr(CsVolume) seg = load_label_volume (c->seg_path, volume);
  g_autoptr(CsVolume) lesion = load_label_volume (c->lesion_path, volume);
  /* Disc labels, else discs derived from vertebral labels, else from a level map. */
  g_autoptr(GArray) discs = NULL;
  const struct { const char *path; CsLabelFileKind kind; } sources[] = {
    { c->discs_path, CS_LABEL_FILE_DISCS },
    { c->vert_labels_path, CS_LABEL_FILE_VERTEBRAE },
    { c->levels_path, CS_LABEL_FILE_LEVELS },
  };
  for (guint i = 0; i < G_N_ELEMENTS (sources) && (discs == NULL || discs->len == 0); i++)
    {
      g_autoptr(GError) discs_error = NULL;
      if (sources[i].path == NULL)
        continue;
      g_clear_pointer (&discs, g_array_unref);
      discs = cs_discs_read (sources[i].path, sources[i].kind, volume, &discs_error);
      if (discs == NULL)
        g_warning ("Ignoring %s: %s", sources[i].path, discs_error->message);
    }

  int slice = cs_case_default_slice (volume, seg);
  CsSagittal *sagittal = cs_volume_extract_sagittal (volume, slice);
  if (sagittal == NULL)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   _("Could not extract sagittal slice %d from “%s”"), slice, c->image_path);
      return NULL;
    }

  CsLoadedCase *loaded = g_new0 (CsLoadedCase, 1);
  loaded->name = g_strdup (c->name);
  loaded->image_path = g_strdup (c->image_path);
  loaded->n_cases = cases->len;
  loaded->cases = g_ptr_array_ref (cases);
  loaded->index = index;
  loaded->n_slices = volume->dim[sagittal->sagittal_axis];
  loaded->sagittal = sagittal;
  loaded->volume = g_steal_pointer (&volume);
  loaded->seg = g_steal_pointer (&seg);
  loaded->lesion = g_steal_pointer (&lesion);
  loaded->discs = g_steal_pointer (&discs);
  return loaded;
}

static CsLoadedCase *
cs_case_loader_load (GFile         *file,
                     GCancellable  *cancellable,
                     GError       **error)
{
  g_autofree char *path = g_file_get_path (file);
  if (path == NULL)
    {
      g_autofree char *uri = g_file_get_uri (file);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("“%s” is not a local file; copy it to this computer first"), uri);
      return NULL;
    }

  g_autoptr(GPtrArray) cases = cs_case_discover (path, error);
  if (cases == NULL)
    return NULL;
  if (cases->len == 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, _("No MRI case found in “%s”"), path);
      return NULL;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  return cs_case_loader_load_case (cases, 0, cancellable, error);
}

typedef struct
{
  GFile     *file;    /* an open: discover, then the first case */
  GPtrArray *cases;   /* else case INDEX of these */
  guint      index;
} LoadRequest;

static void
load_request_free (LoadRequest *request)
{
  g_clear_object (&request->file);
  g_clear_pointer (&request->cases, g_ptr_array_unref);
  g_free (request);
}

static void
cs_case_loader_thread (GTask        *task,
                       gpointer      source_object,
                       gpointer      task_data,
                       GCancellable *cancellable)
{
  LoadRequest *request = task_data;
  GError *error = NULL;
  CsLoadedCase *loaded =
    request->file != NULL
      ? cs_case_loader_load (request->file, cancellable, &error)
      : cs_case_loader_load_case (request->cases, request->index, cancellable, &error);

  if (loaded == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, loaded, (GDestroyNotify) cs_loaded_case_free);
}

static void
cs_case_loader_start (LoadRequest         *request,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, cs_case_loader_load_async);
  g_task_set_task_data (task, request, (GDestroyNotify) load_request_free);
  g_task_run_in_thread (task, cs_case_loader_thread);
}

void
cs_case_loader_load_async (GFile               *file,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_return_if_fail (G_IS_FILE (file));

  LoadRequest *request = g_new0 (LoadRequest, 1);
  request->file = g_object_ref (file);
  cs_case_loader_start (request, cancellable, callback, user_data);
}

void
cs_case_loader_load_case_async (GPtrArray           *cases,
                                guint                index,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (cases != NULL && index < cases->len);

  LoadRequest *request = g_new0 (LoadRequest, 1);
  request->cases = g_ptr_array_ref (cases);
  request->index = index;
  cs_case_loader_start (request, cancellable, callback, user_data);
}

CsLoadedCase *
cs_case_loader_load_finish (GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == cs_case_loader_load_async,
                        NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
