/* cs-volume.h: a 3-D scalar volume in its own voxel grid, with its voxel-to-mm affine.
 * Contract shared by io, engine callers, the CLI and the app. No GTK here. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define CS_IO_ERROR (cs_io_error_quark ())
GQuark cs_io_error_quark (void);

typedef enum
{
  CS_IO_ERROR_OPEN,        /* cannot open / read / write the file */
  CS_IO_ERROR_TRUNCATED,   /* file shorter than its header says */
  CS_IO_ERROR_HEADER,      /* inconsistent or lying header */
  CS_IO_ERROR_DATATYPE,    /* unsupported voxel type */
  CS_IO_ERROR_VALUES,      /* NaN / Inf / invalid label values */
  CS_IO_ERROR_GEOMETRY,    /* grids that do not match, empty masks */
  CS_IO_ERROR_FORMAT,      /* corrupt JSON / safetensors / CSV */
  CS_IO_ERROR_VERSION,     /* unknown schema or file version */
} CsIoError;

/* A volume. data holds nx*ny*nz floats, x fastest (NIfTI order), after scl_slope and
 * scl_inter. vox2mm maps (i, j, k, 1) to RAS+ millimetres (sform when its code is set,
 * else qform, as nibabel does). */
typedef struct
{
  char *path;            /* file it came from, or NULL */
  int dim[3];            /* nx, ny, nz */
  double pixdim[3];      /* voxel size in mm (column norms of vox2mm) */
  double vox2mm[4][4];   /* row-major affine */
  int datatype;          /* NIfTI datatype code of the file (DT_*), for writing alike */
  int nifti_version;     /* 1 or 2 */
  float *data;
  int volumes_in_file;   /* dim[4] of the file: of a 4-D file only the first volume is read */
} CsVolume;

/* Orientation of each voxel axis: the anatomical direction its increasing index points
 * to, one of 'L','R','A','P','S','I' (nibabel's aff2axcodes gives the same letters). */
void       cs_volume_axcodes      (const CsVolume *vol, char codes[4]);
/* The voxel axis closest to left-right: it indexes sagittal slices. */
int        cs_volume_sagittal_axis (const CsVolume *vol);
/* Number of sagittal slices (the size of the sagittal axis). */
int        cs_volume_n_sagittal_slices (const CsVolume *vol);
/* nx*ny*nz. */
gsize      cs_volume_n_voxels     (const CsVolume *vol);

CsVolume  *cs_volume_new          (const int dim[3], const double vox2mm[4][4]);
CsVolume  *cs_volume_new_like     (const CsVolume *ref);   /* same grid, zeroed data */
/* Reads a .nii / .nii.gz, NIfTI-1 or -2, either byte order; datatypes uint8, int8, int16,
 * uint16, int32, uint32, float32, float64 (others: CS_IO_ERROR_DATATYPE). The header is
 * checked before any data is read (HEADER, TRUNCATED errors); of a 4-D file only the first
 * volume is read (volumes_in_file says how many there were); NaN/Inf voxels are refused
 * (CS_IO_ERROR_VALUES). Every error message starts with the path. */
CsVolume  *cs_volume_load         (const char *path, GError **error);
/* Writes atomically (temp + fsync + rename) as .nii or .nii.gz (by the name), NIfTI-1
 * (NIfTI-2 only when a dim exceeds 32767), storing the affine as both sform and qform
 * (code 2, aligned), with the given NIfTI datatype (DT_FLOAT32, DT_UINT8...).
 * Integer types round half away from zero; NaN/Inf anywhere or values out of the type's
 * range are refused (CS_IO_ERROR_VALUES) and nothing is written. */
gboolean   cs_volume_save         (const CsVolume *vol, const char *path, int datatype,
                                   GError **error);
void       cs_volume_free         (CsVolume *vol);
/* A NIfTI datatype code as a short name ("int16", "float32"...; nifticlib's name for the
 * rare ones): what messages and `cordscope-cli info` say. */
const char *cs_nifti_datatype_name (int datatype);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsVolume, cs_volume_free)

static inline float
cs_volume_at (const CsVolume *v, int i, int j, int k)
{
  return v->data[((gsize) k * v->dim[1] + j) * v->dim[0] + i];
}

/* A sagittal slice in display orientation: row 0 is the most superior row, column 0 the
 * most anterior column. px2vox maps display (col, row, 0, 1) to voxel (i, j, k, 1), so
 * any display pixel goes back to the volume exactly; px2mm maps it to RAS+ mm. */
typedef struct
{
  int width, height;      /* columns (A->P), rows (S->I) */
  double spacing[2];      /* mm per column, mm per row */
  double px2vox[4][4];
  double px2mm[4][4];
  int slice;              /* index along the sagittal axis */
  int sagittal_axis;
  float *data;            /* width*height, row-major */
  int volume_dim[3];      /* dim of the volume it came from (0s if made by hand) */
} CsSagittal;

CsSagittal *cs_volume_extract_sagittal (const CsVolume *vol, int slice);
void        cs_sagittal_free           (CsSagittal *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsSagittal, cs_sagittal_free)

G_END_DECLS
