/* cs-case.h: finding cases (an image and its label files) in a file, a flat folder or a
 * BIDS tree. No GTK here.
 *
 * Flat folder: every NAME.nii.gz (or NAME.nii) whose name is not a label file is a case;
 * its files sit next to it: NAME_seg (cord), NAME_labels-disc (discs, SCT values),
 * NAME_lesion, NAME_truth.json (phantoms), NAME_labels-vert (vertebral bodies),
 * NAME_levels (vertebral level map). Names ending in _seg, _seg-*, _lesion, _lesion-*,
 * _levels, _labels-*, _label-*, _dlabel are labels, never cases.
 *
 * BIDS tree (a folder holding sub-* folders): sub-X/anat/ or sub-X/ses-Y/anat/ images
 * named *_T2w.nii[.gz], with labels in derivatives/labels/sub-X[/ses-Y]/anat/ (then next
 * to the image): cord
 * _seg-manual, else _label-SC_seg, else _seg; discs _labels-disc-manual, else
 * _label-discs_dlabel, else _labels-disc.
 *
 * A cord mask named _seg-OTHER (e.g. _seg-partial-C3toC5) is used when no preferred one
 * exists. A folder that is neither is searched two levels down (hidden folders and
 * derivatives/ skipped), so a folder of case folders opens as one list. */
#pragma once

#include <glib.h>

#include "io/cs-volume.h"

G_BEGIN_DECLS

typedef struct
{
  char *name;              /* NAME: the image file name without .nii/.nii.gz */
  char *image_path;
  char *seg_path;          /* each NULL when absent */
  char *discs_path;
  char *lesion_path;
  char *truth_path;
  char *vert_labels_path;
  char *levels_path;
  char *sidecar_path;      /* an existing NAME.cordscope.json, or NULL */
  char *sidecar_target;    /* where NAME.cordscope.json is read from and written to */
  char *subject;           /* BIDS sub-* / ses-* folder names, NULL outside BIDS */
  char *session;
} CsCase;

/* Cases (CsCase*, owned by the array, sorted by name, then image path) under PATH: an
 * image file, a flat folder or a BIDS tree. Errors: CS_IO_ERROR_OPEN when PATH cannot be
 * read, is not a NIfTI file, or holds no case. */
GPtrArray *cs_case_discover      (const char *path, GError **error);
/* As cs_case_discover(); sidecars are looked for and written in ANNOTATION_DIR when it is
 * not NULL (as NAME.cordscope.json, so names must be unique), else next to each image. */
GPtrArray *cs_case_discover_full (const char *path, const char *annotation_dir,
                                  GError **error);
void       cs_case_free          (CsCase *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsCase, cs_case_free)

/* TRUE when a file name (with or without folder) names a label or mask file, not a case. */
gboolean   cs_case_is_label_file (const char *path);

/* The default sagittal slice: the one with the largest cord area in SEG (voxels > 0.5;
 * ties go to the slice nearest the middle), or the middle slice (dim / 2 along the
 * sagittal axis) when SEG is NULL, empty or on another voxel grid than IMAGE. */
int        cs_case_default_slice (const CsVolume *image, const CsVolume *seg);

G_END_DECLS
