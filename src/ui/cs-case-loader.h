/* cs-case-loader.h: opens a case off the main thread (discovery, NIfTI read, labels,
 * default slice), so the window never stalls on a large or slow file. */
#pragma once

#include <gio/gio.h>

#include "io/cs-case.h"
#include "io/cs-volume.h"

G_BEGIN_DECLS

/* What the window shows of one case: its image volume, labels and the default slice. */
typedef struct
{
  char       *name;          /* the case name (image file name without .nii/.nii.gz) */
  char       *image_path;
  guint       n_cases;       /* cases found where the file or folder was opened */
  GPtrArray  *cases;         /* those cases (CsCase*, shared, read-only) */
  guint       index;         /* this case's index in cases */
  CsVolume   *volume;
  CsVolume   *seg;           /* cord mask on the volume's grid, or NULL */
  CsVolume   *lesion;        /* lesion truth on the volume's grid, or NULL */
  GArray     *discs;         /* CsDisc from the disc labels, or NULL */
  CsSagittal *sagittal;      /* the default slice, in display orientation */
  int         n_slices;      /* sagittal slices in the volume */
} CsLoadedCase;

void          cs_loaded_case_free        (CsLoadedCase *loaded);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsLoadedCase, cs_loaded_case_free)

/* Finds the cases at FILE (an image, a flat folder or a BIDS tree) and opens the first,
 * in a worker thread. The callback runs on the caller's thread-default main context. */
void          cs_case_loader_load_async  (GFile               *file,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
/* Opens case INDEX of CASES (from an earlier load) in a worker thread. */
void          cs_case_loader_load_case_async (GPtrArray           *cases,
                                              guint                index,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
CsLoadedCase *cs_case_loader_load_finish (GAsyncResult        *result,
                                          GError             **error);
/* TRUE when a case has a reference to compare with: lesion truth, truth JSON or an
 * annotator's sidecar. */
gboolean      cs_case_is_labelled        (const CsCase        *c);

G_END_DECLS
