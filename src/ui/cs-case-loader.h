/* cs-case-loader.h: opens a case off the main thread (discovery, NIfTI read, default
 * slice), so the window never stalls on a large or slow file. */
#pragma once

#include <gio/gio.h>

#include "io/cs-volume.h"

G_BEGIN_DECLS

/* What the window shows of one case: its image volume and the default sagittal slice. */
typedef struct
{
  char       *name;          /* the case name (image file name without .nii/.nii.gz) */
  char       *image_path;
  guint       n_cases;       /* cases found where the file or folder was opened */
  CsVolume   *volume;
  CsSagittal *sagittal;      /* the default slice, in display orientation */
  int         n_slices;      /* sagittal slices in the volume */
} CsLoadedCase;

void          cs_loaded_case_free        (CsLoadedCase *loaded);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsLoadedCase, cs_loaded_case_free)

/* Opens the first case found at FILE (an image, a flat folder or a BIDS tree) in a
 * worker thread. The callback runs on the caller's thread-default main context. */
void          cs_case_loader_load_async  (GFile               *file,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
CsLoadedCase *cs_case_loader_load_finish (GAsyncResult        *result,
                                          GError             **error);

G_END_DECLS
