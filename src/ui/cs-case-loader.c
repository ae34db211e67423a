/* cs-case-loader.c: case discovery and volume reading in a GTask thread. */
#include "cs-config.h"

#include <glib/gi18n.h>

#include "io/cs-case.h"
#include "cs-case-loader.h"

void
cs_loaded_case_free (CsLoadedCase *loaded)
{
  if (loaded == NULL)
    return;
  g_free (loaded->name);
  g_free (loaded->image_path);
  g_clear_pointer (&loaded->volume, cs_volume_free);
  g_clear_pointer (&loaded->sagittal, cs_sagittal_free);
  g_free (loaded);
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

  const CsCase *first = g_ptr_array_index (cases, 0);
  g_autoptr(CsVolume) volume = cs_volume_load (first->image_path, error);
  if (volume == NULL)
    return NULL;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  /* A cord mask that cannot be read only costs the better default slice, not the case. */
  g_autoptr(CsVolume) seg = NULL;
  if (first->seg_path != NULL)
    {
      g_autoptr(GError) seg_error = NULL;
      seg = cs_volume_load (first->seg_path, &seg_error);
      if (seg == NULL)
        g_warning ("Ignoring the cord mask of %s: %s", first->name, seg_error->message);
    }

  int slice = cs_case_default_slice (volume, seg);
  CsSagittal *sagittal = cs_volume_extract_sagittal (volume, slice);
  if (sagittal == NULL)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   _("Could not extract sagittal slice %d from “%s”"), slice, first->image_path);
      return NULL;
    }

  CsLoadedCase *loaded = g_new0 (CsLoadedCase, 1);
  loaded->name = g_strdup (first->name);
  loaded->image_path = g_strdup (first->image_path);
  loaded->n_cases = cases->len;
  loaded->n_slices = volume->dim[sagittal->sagittal_axis];
  loaded->sagittal = sagittal;
  loaded->volume = g_steal_pointer (&volume);
  return loaded;
}

static void
cs_case_loader_thread (GTask        *task,
                       gpointer      source_object,
                       gpointer      task_data,
                       GCancellable *cancellable)
{
  GError *error = NULL;
  CsLoadedCase *loaded = cs_case_loader_load (G_FILE (task_data), cancellable, &error);

  if (loaded == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, loaded, (GDestroyNotify) cs_loaded_case_free);
}

void
cs_case_loader_load_async (GFile               *file,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_return_if_fail (G_IS_FILE (file));

  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, cs_case_loader_load_async);
  g_task_set_task_data (task, g_object_ref (file), g_object_unref);
  g_task_run_in_thread (task, cs_case_loader_thread);
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
