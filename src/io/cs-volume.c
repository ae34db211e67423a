/* cs-volume.c: NIfTI-1/2 volumes in and out, orientation, sagittal extraction.
 *
 * Files are read and written here with zlib on nifticlib's header structures, byte-swap
 * and quaternion routines. nifticlib's own reader is not used: it trusts headers (a lying
 * one can make it abort or allocate absurdly) and it silently zeroes NaN/Inf voxels.
 * Every header is checked before any data is read, and memory only grows with the data
 * actually in the file. Writing goes through a temporary file renamed into place, so a
 * failed write leaves nothing behind and never a half-written file. */
#include "io/cs-volume.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <nifti2_io.h>
#include <zlib.h>

G_DEFINE_QUARK (cs-io-error-quark, cs_io_error)

G_STATIC_ASSERT (sizeof (nifti_1_header) == 348);
G_STATIC_ASSERT (sizeof (nifti_2_header) == 540);

/* Largest 3-D volume we accept: beyond this a header is lying or the file is not ours. */
#define CS_VOLUME_MAX_VOXELS ((guint64) 1 << 31)

/* The header fields we use, in one form for NIfTI-1 and NIfTI-2. */
typedef struct
{
  int version;
  gboolean swapped;
  gint64 dim[8];
  double pixdim[8];
  int datatype;
  gint64 vox_offset;
  double vox_offset_raw;
  double scl_slope, scl_inter;
  int qform_code, sform_code;
  double quatern[3], qoffset[3];
  double srow[3][4];
} CsNiftiHeader;

static const char *
basename_of (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash ? slash + 1 : path;
}

static gboolean
name_is_gz (const char *path)
{
  return g_str_has_suffix (path, ".nii.gz");
}

static gboolean
name_is_nifti (const char *path)
{
  return g_str_has_suffix (path, ".nii") || g_str_has_suffix (path, ".nii.gz");
}

static int
bytes_per_voxel (int datatype)
{
  switch (datatype)
    {
    case DT_UINT8: case DT_INT8: return 1;
    case DT_INT16: case DT_UINT16: return 2;
    case DT_INT32: case DT_UINT32: case DT_FLOAT32: return 4;
    case DT_FLOAT64: return 8;
    default: return 0;
    }
}

const char *
cs_nifti_datatype_name (int datatype)
{
  switch (datatype)
    {
    case DT_UINT8: return "uint8";
    case DT_INT8: return "int8";
    case DT_INT16: return "int16";
    case DT_UINT16: return "uint16";
    case DT_INT32: return "int32";
    case DT_UINT32: return "uint32";
    case DT_INT64: return "int64";
    case DT_UINT64: return "uint64";
    case DT_FLOAT32: return "float32";
    case DT_FLOAT64: return "float64";
    default: return nifti_datatype_to_string (datatype);
    }
}

/* ---- small matrix helpers (row-major 4x4 affines) ---- */

static void
mat4_identity (double m[4][4])
{
  memset (m, 0, sizeof (double) * 16);
  for (int i = 0; i < 4; i++)
    m[i][i] = 1.0;
}

static void
mat4_mul (const double a[4][4], const double b[4][4], double out[4][4])
{
  double r[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      {
        double s = 0.0;
        for (int k = 0; k < 4; k++)
          s += a[i][k] * b[k][j];
        r[i][j] = s;
      }
  memcpy (out, r, sizeof r);
}

static double
det3 (const double m[3][3])
{
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
         - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
         + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

/* Inverse transpose of a 3x3 matrix; FALSE when singular. */
static gboolean
inv_transpose3 (const double m[3][3], double out[3][3])
{
  double d = det3 (m);
  if (!(fabs (d) > 1e-300))
    return FALSE;
  /* cofactor matrix / det is the inverse transpose */
  out[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / d;
  out[0][1] = -(m[1][0] * m[2][2] - m[1][2] * m[2][0]) / d;
  out[0][2] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / d;
  out[1][0] = -(m[0][1] * m[2][2] - m[0][2] * m[2][1]) / d;
  out[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / d;
  out[1][2] = -(m[0][0] * m[2][1] - m[0][1] * m[2][0]) / d;
  out[2][0] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / d;
  out[2][1] = -(m[0][0] * m[1][2] - m[0][2] * m[1][0]) / d;
  out[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / d;
  return TRUE;
}

static gboolean
affine_is_usable (const double m[4][4])
{
  double r[3][3];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (!isfinite (m[i][j]))
        return FALSE;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      r[i][j] = m[i][j];
  double scale = 0.0;
  for (int j = 0; j < 3; j++)
    scale = MAX (scale, sqrt (r[0][j] * r[0][j] + r[1][j] * r[1][j] + r[2][j] * r[2][j]));
  return scale > 0.0 && fabs (det3 (r)) > 1e-9 * scale * scale * scale;
}

static void
pixdim_from_affine (CsVolume *vol)
{
  for (int j = 0; j < 3; j++)
    vol->pixdim[j] = sqrt (vol->vox2mm[0][j] * vol->vox2mm[0][j]
                           + vol->vox2mm[1][j] * vol->vox2mm[1][j]
                           + vol->vox2mm[2][j] * vol->vox2mm[2][j]);
}

/* ---- header reading and validation ---- */

static gboolean
read_fully (gzFile gz, void *buf, gsize len, gsize *got)
{
  gsize total = 0;
  while (total < len)
    {
      unsigned chunk = (unsigned) MIN (len - total, (gsize) 1 << 30);
      int n = gzread (gz, (char *) buf + total, chunk);
      if (n < 0)
        {
          *got = total;
          return FALSE;
        }
      if (n == 0)
        break;
      total += (gsize) n;
    }
  *got = total;
  return TRUE;
}

static void
set_gz_error (GError **error, gzFile gz, const char *path)
{
  int errnum = 0;
  const char *msg = gzerror (gz, &errnum);
  if (errnum == Z_ERRNO)
    g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot read the file: %s",
                 path, g_strerror (errno));
  else
    {
      /* zlib prefixes its message with the path: keep only the reason */
      if (msg && g_str_has_prefix (msg, path) && g_str_has_prefix (msg + strlen (path), ": "))
        msg += strlen (path) + 2;
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: the compressed data is corrupt (%s)", path, msg ? msg : "zlib error");
    }
}

/* The fields Cordscope reads, from a NIfTI-1 or NIfTI-2 header struct (same names, wider
 * types in NIfTI-2) into CsNiftiHeader. */
#define COPY_NIFTI_FIELDS(h, n)                                                              \
  do                                                                                         \
    {                                                                                        \
      for (int i_ = 0; i_ < 8; i_++)                                                         \
        {                                                                                    \
          (h)->dim[i_] = (n).dim[i_];                                                        \
          (h)->pixdim[i_] = (n).pixdim[i_];                                                  \
        }                                                                                    \
      (h)->datatype = (n).datatype;                                                          \
      (h)->vox_offset_raw = (double) (n).vox_offset;                                         \
      (h)->scl_slope = (n).scl_slope;                                                        \
      (h)->scl_inter = (n).scl_inter;                                                        \
      (h)->qform_code = (n).qform_code;                                                      \
      (h)->sform_code = (n).sform_code;                                                      \
      (h)->quatern[0] = (n).quatern_b;                                                       \
      (h)->quatern[1] = (n).quatern_c;                                                       \
      (h)->quatern[2] = (n).quatern_d;                                                       \
      (h)->qoffset[0] = (n).qoffset_x;                                                       \
      (h)->qoffset[1] = (n).qoffset_y;                                                       \
      (h)->qoffset[2] = (n).qoffset_z;                                                       \
      for (int j_ = 0; j_ < 4; j_++)                                                         \
        {                                                                                    \
          (h)->srow[0][j_] = (n).srow_x[j_];                                                 \
          (h)->srow[1][j_] = (n).srow_y[j_];                                                 \
          (h)->srow[2][j_] = (n).srow_z[j_];                                                 \
        }                                                                                    \
    }                                                                                        \
  while (0)

static gboolean
parse_header (const char *path, const guint8 *buf, gsize got, CsNiftiHeader *h,
              GError **error)
{
  gint32 size_field;

  memset (h, 0, sizeof *h);
  if (got < 4)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_TRUNCATED,
                   "%s: the file is empty or too short to hold a NIfTI header (%"
                   G_GSIZE_FORMAT " bytes)", path, got);
      return FALSE;
    }
  memcpy (&size_field, buf, 4);
  if (size_field == 348 || GUINT32_SWAP_LE_BE ((guint32) size_field) == 348)
    h->version = 1;
  else if (size_field == 540 || GUINT32_SWAP_LE_BE ((guint32) size_field) == 540)
    h->version = 2;
  else
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: not a NIfTI-1 or NIfTI-2 file (the header size field is %d, "
                   "not 348 or 540)", path, size_field);
      return FALSE;
    }
  h->swapped = !(size_field == 348 || size_field == 540);

  if (got < (h->version == 1 ? 348u : 540u))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_TRUNCATED,
                   "%s: the file ends inside its NIfTI-%d header (%" G_GSIZE_FORMAT
                   " of %d bytes)", path, h->version, got, h->version == 1 ? 348 : 540);
      return FALSE;
    }

  if (h->version == 1)
    {
      nifti_1_header n1;
      memcpy (&n1, buf, sizeof n1);
      if (h->swapped)
        nifti_swap_as_nifti1 (&n1);
      if (memcmp (n1.magic, "ni1", 4) == 0)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: this is the header of a .hdr/.img pair; Cordscope reads "
                       "single-file .nii or .nii.gz only", path);
          return FALSE;
        }
      if (memcmp (n1.magic, "n+1", 4) != 0)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: the magic string is not \"n+1\": not a NIfTI-1 file "
                       "(an old Analyze file?)", path);
          return FALSE;
        }
      COPY_NIFTI_FIELDS (h, n1);
    }
  else
    {
      nifti_2_header n2;
      memcpy (&n2, buf, sizeof n2);
      if (h->swapped)
        nifti_swap_as_nifti2 (&n2);
      if (memcmp (n2.magic, "n+2", 4) != 0)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: the magic string is not \"n+2\": not a single-file NIfTI-2 "
                       "file", path);
          return FALSE;
        }
      COPY_NIFTI_FIELDS (h, n2);
    }
  return TRUE;
}

/* Checks dims, voxel sizes, datatype, scaling and vox_offset; fills the data size. */
static gboolean
validate_header (const char *path, CsNiftiHeader *h, guint64 *data_bytes,
                 guint64 *volume_voxels, GError **error)
{
  gint64 ndim = h->dim[0];
  guint64 nvox = 1, total;
  int bpv;

  if (ndim < 1 || ndim > 7)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                   "%s: the header says the image has %" G_GINT64_FORMAT
                   " dimensions (dim[0]); it must be 1 to 7", path, ndim);
      return FALSE;
    }
  for (int i = 1; i <= 7; i++)
    {
      if (i > ndim)
        {
          h->dim[i] = 1;
          continue;
        }
      if (h->dim[i] < 1)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                       "%s: dimension %d of the image is %" G_GINT64_FORMAT
                       " voxels; every dimension must be at least 1", path, i, h->dim[i]);
          return FALSE;
        }
    }
  for (int i = 5; i <= 7; i++)
    if (h->dim[i] > 1)
      {
        g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                     "%s: the image has %" G_GINT64_FORMAT " values per voxel (dim[%d]); "
                     "Cordscope reads scalar volumes only", path, h->dim[i], i);
        return FALSE;
      }
  for (int i = 1; i <= 3; i++)
    if (!g_uint64_checked_mul (&nvox, nvox, (guint64) h->dim[i]) || nvox > CS_VOLUME_MAX_VOXELS)
      {
        g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                     "%s: the header's dimensions %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                     " x %" G_GINT64_FORMAT " give more than 2^31 voxels; the header is "
                     "damaged or the image is far too large", path, h->dim[1], h->dim[2],
                     h->dim[3]);
        return FALSE;
      }

  bpv = bytes_per_voxel (h->datatype);
  if (bpv == 0)
    {
      const char *name = cs_nifti_datatype_name (h->datatype);
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_DATATYPE,
                   "%s: voxel datatype %d (%s) is not supported; Cordscope reads uint8, "
                   "int8, int16, uint16, int32, uint32, float32 and float64", path,
                   h->datatype, name && *name ? name : "unknown");
      return FALSE;
    }

  for (int i = 1; i <= 3; i++)
    {
      if (i > ndim)
        {
          /* pixdim of an absent axis is meaningless: nifticlib uses 1 as well */
          if (!(isfinite (h->pixdim[i]) && h->pixdim[i] > 0.0))
            h->pixdim[i] = 1.0;
          continue;
        }
      if (!(isfinite (h->pixdim[i]) && h->pixdim[i] > 0.0))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                       "%s: voxel size pixdim[%d] is %g; voxel sizes must be positive "
                       "numbers", path, i, h->pixdim[i]);
          return FALSE;
        }
    }

  if (!g_uint64_checked_mul (&total, nvox, (guint64) h->dim[4])
      || !g_uint64_checked_mul (&total, total, (guint64) bpv)
      || total > ((guint64) 1 << 62))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                   "%s: the header's dimensions give an impossible data size", path);
      return FALSE;
    }

  {
    double off = h->vox_offset_raw;
    int hdr_size = h->version == 1 ? 348 : 540;
    if (!isfinite (off) || off < hdr_size || off > 9.0e18)
      {
        g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                     "%s: the data offset (vox_offset = %g) lies inside the %d-byte header "
                     "or is not a valid number", path, off, hdr_size);
        return FALSE;
      }
    h->vox_offset = (gint64) off;
  }

  /* nibabel's rule: a zero or non-finite slope means no scaling */
  if (isfinite (h->scl_slope) && h->scl_slope != 0.0 && !isfinite (h->scl_inter))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                   "%s: the intensity scaling has slope %g but intercept %g", path,
                   h->scl_slope, h->scl_inter);
      return FALSE;
    }

  *data_bytes = total;
  *volume_voxels = nvox;
  return TRUE;
}

/* The voxel-to-mm affine nibabel reports: sform, else qform, else a centred diagonal. */
static gboolean
header_affine (const char *path, const CsNiftiHeader *h, double out[4][4], GError **error)
{
  mat4_identity (out);
  if (h->sform_code > 0)
    {
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
          out[i][j] = h->srow[i][j];
      if (!affine_is_usable (out))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                       "%s: the sform (voxel-to-mm matrix) is singular or not finite", path);
          return FALSE;
        }
      return TRUE;
    }
  if (h->qform_code > 0)
    {
      double b = h->quatern[0], c = h->quatern[1], d = h->quatern[2];
      nifti_dmat44 q;
      if (!(isfinite (b) && isfinite (c) && isfinite (d)) || b * b + c * c + d * d > 1.0 + 1e-5
          || !(isfinite (h->qoffset[0]) && isfinite (h->qoffset[1])
               && isfinite (h->qoffset[2])))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                       "%s: the qform quaternion (%g, %g, %g) or its offset is invalid",
                       path, b, c, d);
          return FALSE;
        }
      q = nifti_quatern_to_dmat44 (b, c, d, h->qoffset[0], h->qoffset[1], h->qoffset[2],
                                   h->pixdim[1], h->pixdim[2], h->pixdim[3],
                                   h->pixdim[0] < 0.0 ? -1.0 : 1.0);
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
          out[i][j] = q.m[i][j];
      if (!affine_is_usable (out))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                       "%s: the qform (voxel-to-mm matrix) is singular or not finite", path);
          return FALSE;
        }
      return TRUE;
    }
  /* nibabel's shape_zoom_affine: x flipped (radiological), centred on the grid */
  {
    double zoom[3] = { -h->pixdim[1], h->pixdim[2], h->pixdim[3] };
    for (int i = 0; i < 3; i++)
      {
        out[i][i] = zoom[i];
        out[i][3] = -((double) h->dim[i + 1] - 1.0) / 2.0 * zoom[i];
      }
  }
  return TRUE;
}

/* Reads LEN bytes; FALSE with an error for corrupt compressed data. A short read (end of
 * file, or a cut gzip stream) is not an error here: *GOT says how much came. */
static gboolean
read_some (gzFile gz, const char *path, void *buf, gsize len, gsize *got, GError **error)
{
  if (!read_fully (gz, buf, len, got))
    {
      int errnum = 0;
      gzerror (gz, &errnum);
      /* a cut gzip stream is a truncated file, not a corrupt one */
      if (errnum != Z_BUF_ERROR)
        {
          set_gz_error (error, gz, path);
          return FALSE;
        }
    }
  return TRUE;
}

/* Skips LEN bytes; *GOT says how many were there. */
static gboolean
skip_bytes (gzFile gz, const char *path, guint64 len, guint64 *got, GError **error)
{
  guint8 scratch[65536];
  *got = 0;
  while (*got < len)
    {
      gsize n = 0;
      if (!read_some (gz, path, scratch, (gsize) MIN (len - *got, sizeof scratch), &n, error))
        return FALSE;
      *got += n;
      if (n == 0)
        break;
    }
  return TRUE;
}

static void
set_past_end_error (GError **error, const char *path, const CsNiftiHeader *h, guint64 have)
{
  g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
               "%s: the header puts the voxel data at byte %" G_GINT64_FORMAT
               " (vox_offset), past the end of the file (%" G_GUINT64_FORMAT " bytes)",
               path, h->vox_offset, have);
}

static void
set_truncated_error (GError **error, const char *path, guint64 needed, guint64 have)
{
  g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_TRUNCATED,
               "%s: the file is truncated: its header needs %" G_GUINT64_FORMAT
               " bytes of voxel data but only %" G_GUINT64_FORMAT " are there", path,
               needed, have);
}

/* Reads and checks the header, then the first volume's raw bytes (in file byte order).
 * Memory grows with the data actually there, so a lying header cannot make us allocate
 * more than the file holds. */
static guint8 *
read_nifti (const char *path, CsNiftiHeader *h, guint64 *volume_voxels, GError **error)
{
  guint8 hdr[540];
  gsize got = 0, hdr_size;
  guint64 data_bytes = 0, volume_bytes, have = 0, skipped = 0;
  gzFile gz;
  guint8 *raw = NULL;
  gsize capacity;

  if (!name_is_nifti (path))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: not a NIfTI file name (expected .nii or .nii.gz)", path);
      return NULL;
    }
  errno = 0;
  gz = gzopen (path, "rb");
  if (gz == NULL)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot open the file: %s",
                   path, errno ? g_strerror (errno) : "out of memory");
      return NULL;
    }
  if (!read_some (gz, path, hdr, 4, &got, error))
    goto fail;
  if (got == 4)
    {
      gint32 size_field;
      memcpy (&size_field, hdr, 4);
      hdr_size = (size_field == 540 || GUINT32_SWAP_LE_BE ((guint32) size_field) == 540)
                 ? 540 : 348;
      if (!read_some (gz, path, hdr + 4, hdr_size - 4, &got, error))
        goto fail;
      got += 4;
    }
  if (!parse_header (path, hdr, got, h, error)
      || !validate_header (path, h, &data_bytes, volume_voxels, error))
    goto fail;
  hdr_size = h->version == 1 ? 348 : 540;
  volume_bytes = *volume_voxels * (guint64) bytes_per_voxel (h->datatype);

  /* a plain file: its size tells at once whether the header lies */
  if (gzdirect (gz))
    {
      GStatBuf st;
      if (g_stat (path, &st) != 0)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot read the file: %s",
                       path, g_strerror (errno));
          goto fail;
        }
      if ((guint64) st.st_size < (guint64) h->vox_offset)
        {
          set_past_end_error (error, path, h, (guint64) st.st_size);
          goto fail;
        }
      if ((guint64) st.st_size - (guint64) h->vox_offset < data_bytes)
        {
          set_truncated_error (error, path, data_bytes,
                               (guint64) st.st_size - (guint64) h->vox_offset);
          goto fail;
        }
    }

  if (!skip_bytes (gz, path, (guint64) h->vox_offset - hdr_size, &skipped, error))
    goto fail;
  if (skipped < (guint64) h->vox_offset - hdr_size)
    {
      set_past_end_error (error, path, h, hdr_size + skipped);
      goto fail;
    }

  capacity = (gsize) MIN (volume_bytes, (guint64) 64 << 20);
  raw = g_malloc (MAX (capacity, 1));
  while (have < volume_bytes)
    {
      gsize n = 0;
      if (have == capacity)
        {
          capacity = (gsize) MIN (volume_bytes, (guint64) capacity * 2);
          raw = g_realloc (raw, capacity);
        }
      if (!read_some (gz, path, raw + have, capacity - have, &n, error))
        goto fail;
      have += n;
      if (n == 0)
        break;
    }
  if (have < volume_bytes)
    {
      set_truncated_error (error, path, data_bytes, have);
      goto fail;
    }
  /* the other volumes of a 4-D file must be there too, though only the first is kept */
  if (data_bytes > volume_bytes)
    {
      if (!skip_bytes (gz, path, data_bytes - volume_bytes, &skipped, error))
        goto fail;
      if (skipped < data_bytes - volume_bytes)
        {
          set_truncated_error (error, path, data_bytes, volume_bytes + skipped);
          goto fail;
        }
    }
  gzclose (gz);
  return raw;

fail:
  g_free (raw);
  gzclose (gz);
  return NULL;
}

/* ---- public API ---- */

CsVolume *
cs_volume_new (const int dim[3], const double vox2mm[4][4])
{
  CsVolume *vol;
  gsize n = 1;

  g_return_val_if_fail (dim != NULL, NULL);
  for (int i = 0; i < 3; i++)
    {
      g_return_val_if_fail (dim[i] > 0, NULL);
      g_return_val_if_fail (g_size_checked_mul (&n, n, (gsize) dim[i]), NULL);
    }
  vol = g_new0 (CsVolume, 1);
  memcpy (vol->dim, dim, sizeof vol->dim);
  if (vox2mm)
    memcpy (vol->vox2mm, vox2mm, sizeof vol->vox2mm);
  else
    mat4_identity (vol->vox2mm);
  pixdim_from_affine (vol);
  vol->datatype = DT_FLOAT32;
  vol->nifti_version = 1;
  vol->volumes_in_file = 1;
  vol->data = g_new0 (float, n);
  return vol;
}

CsVolume *
cs_volume_new_like (const CsVolume *ref)
{
  CsVolume *vol;

  g_return_val_if_fail (ref != NULL, NULL);
  vol = cs_volume_new (ref->dim, (const double (*)[4]) ref->vox2mm);
  vol->datatype = ref->datatype;
  vol->nifti_version = ref->nifti_version;
  return vol;
}

void
cs_volume_free (CsVolume *vol)
{
  if (vol == NULL)
    return;
  g_free (vol->path);
  g_free (vol->data);
  g_free (vol);
}

gsize
cs_volume_n_voxels (const CsVolume *vol)
{
  return (gsize) vol->dim[0] * vol->dim[1] * vol->dim[2];
}

/* Converts N raw voxels to float with scaling; counts non-finite results. */
static gsize
convert_voxels (const void *raw, int datatype, gsize n, double slope, double inter,
                float *out, gsize *first_bad)
{
  gsize bad = 0;
  *first_bad = 0;
#define CS_CONVERT(type)                                                  \
  {                                                                       \
    const type *src = raw;                                                \
    for (gsize v = 0; v < n; v++)                                         \
      {                                                                   \
        double x = (double) src[v] * slope + inter;                       \
        /* beyond float's range the cast itself would be undefined */    \
        if (!(fabs (x) <= G_MAXFLOAT))                                    \
          {                                                               \
            if (bad++ == 0)                                               \
              *first_bad = v;                                             \
            x = 0.0;                                                      \
          }                                                               \
        out[v] = (float) x;                                               \
      }                                                                   \
  }                                                                       \
  break;
  switch (datatype)
    {
    case DT_UINT8: CS_CONVERT (guint8)
    case DT_INT8: CS_CONVERT (gint8)
    case DT_INT16: CS_CONVERT (gint16)
    case DT_UINT16: CS_CONVERT (guint16)
    case DT_INT32: CS_CONVERT (gint32)
    case DT_UINT32: CS_CONVERT (guint32)
    case DT_FLOAT32: CS_CONVERT (float)
    case DT_FLOAT64: CS_CONVERT (double)
    default: g_assert_not_reached ();
    }
#undef CS_CONVERT
  return bad;
}

CsVolume *
cs_volume_load (const char *path, GError **error)
{
  CsNiftiHeader h;
  guint64 nvox = 0;
  double affine[4][4];
  double slope = 1.0, inter = 0.0;
  g_autofree guint8 *raw = NULL;
  gsize bad, first_bad;
  CsVolume *vol;
  int dim[3];

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* nifticlib's reader is not used for the data: it silently replaces NaN/Inf by 0,
   * hiding exactly the broken files we must refuse */
  raw = read_nifti (path, &h, &nvox, error);
  if (raw == NULL || !header_affine (path, &h, affine, error))
    return NULL;
  if (h.swapped && bytes_per_voxel (h.datatype) > 1)
    nifti_swap_Nbytes ((int64_t) nvox, bytes_per_voxel (h.datatype), raw);

  if (isfinite (h.scl_slope) && h.scl_slope != 0.0)
    {
      slope = h.scl_slope;
      inter = h.scl_inter;
    }
  dim[0] = (int) h.dim[1];
  dim[1] = (int) h.dim[2];
  dim[2] = (int) h.dim[3];
  vol = cs_volume_new (dim, (const double (*)[4]) affine);
  bad = convert_voxels (raw, h.datatype, (gsize) nvox, slope, inter, vol->data, &first_bad);
  if (bad > 0)
    {
      gsize i = first_bad % (gsize) dim[0];
      gsize j = first_bad / (gsize) dim[0] % (gsize) dim[1];
      gsize k = first_bad / ((gsize) dim[0] * (gsize) dim[1]);
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                   "%s: %" G_GSIZE_FORMAT " voxel%s NaN or infinite (the first at voxel "
                   "%" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT "); "
                   "Cordscope needs finite intensities", path, bad,
                   bad == 1 ? " is" : "s are", i, j, k);
      cs_volume_free (vol);
      return NULL;
    }

  vol->path = g_strdup (path);
  vol->datatype = h.datatype;
  vol->nifti_version = h.version;
  vol->volumes_in_file = (int) MIN (h.dim[4], (gint64) G_MAXINT);
  return vol;
}

/* ---- orientation ---- */

/* Voxel axis -> (world axis, sign), as nibabel's io_orientation: the closest rotation
 * (polar decomposition) of the column-normalised affine, then each voxel axis in turn
 * takes the world axis it moves along most, among those not yet taken. */
static void
orientation (const double vox2mm[4][4], int world_axis[3], int sign[3])
{
  double r[3][3], inv_t[3][3];
  gboolean used[3] = { FALSE, FALSE, FALSE };

  for (int j = 0; j < 3; j++)
    {
      double norm = sqrt (vox2mm[0][j] * vox2mm[0][j] + vox2mm[1][j] * vox2mm[1][j]
                          + vox2mm[2][j] * vox2mm[2][j]);
      if (norm == 0.0)
        norm = 1.0;
      for (int i = 0; i < 3; i++)
        r[i][j] = vox2mm[i][j] / norm;
    }
  /* Newton iteration R <- (R + R^-T) / 2 converges to the orthogonal polar factor */
  for (int it = 0; it < 100 && inv_transpose3 (r, inv_t); it++)
    {
      double change = 0.0;
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
          {
            double next = 0.5 * (r[i][j] + inv_t[i][j]);
            change = MAX (change, fabs (next - r[i][j]));
            r[i][j] = next;
          }
      if (change < 1e-15)
        break;
    }

  for (int in = 0; in < 3; in++)
    {
      int best = -1;
      double best_abs = -1.0;
      for (int out = 0; out < 3; out++)
        if (!used[out] && fabs (r[out][in]) > best_abs)
          {
            best_abs = fabs (r[out][in]);
            best = out;
          }
      used[best] = TRUE;
      world_axis[in] = best;
      sign[in] = r[best][in] < 0.0 ? -1 : 1;
    }
}

void
cs_volume_axcodes (const CsVolume *vol, char codes[4])
{
  static const char pos[3] = { 'R', 'A', 'S' }, neg[3] = { 'L', 'P', 'I' };
  int world[3], sign[3];

  orientation ((const double (*)[4]) vol->vox2mm, world, sign);
  for (int i = 0; i < 3; i++)
    codes[i] = sign[i] > 0 ? pos[world[i]] : neg[world[i]];
  codes[3] = '\0';
}

int
cs_volume_sagittal_axis (const CsVolume *vol)
{
  int world[3], sign[3];

  orientation ((const double (*)[4]) vol->vox2mm, world, sign);
  for (int i = 0; i < 3; i++)
    if (world[i] == 0)
      return i;
  g_assert_not_reached ();
  return 0;
}

int
cs_volume_n_sagittal_slices (const CsVolume *vol)
{
  return vol->dim[cs_volume_sagittal_axis (vol)];
}

/* ---- sagittal extraction ---- */

CsSagittal *
cs_volume_extract_sagittal (const CsVolume *vol, int slice)
{
  int world[3], sign[3], ax_sag = -1, ax_row = -1, ax_col = -1;
  CsSagittal *s;
  double px2vox[4][4];

  g_return_val_if_fail (vol != NULL && vol->data != NULL, NULL);
  orientation ((const double (*)[4]) vol->vox2mm, world, sign);
  for (int i = 0; i < 3; i++)
    {
      if (world[i] == 0)
        ax_sag = i;
      else if (world[i] == 1)
        ax_col = i;
      else
        ax_row = i;
    }
  g_return_val_if_fail (slice >= 0 && slice < vol->dim[ax_sag], NULL);

  /* row 0 is the most superior voxel row, column 0 the most anterior one */
  memset (px2vox, 0, sizeof px2vox);
  if (sign[ax_col] > 0)
    {
      px2vox[ax_col][0] = -1.0;
      px2vox[ax_col][3] = vol->dim[ax_col] - 1;
    }
  else
    px2vox[ax_col][0] = 1.0;
  if (sign[ax_row] > 0)
    {
      px2vox[ax_row][1] = -1.0;
      px2vox[ax_row][3] = vol->dim[ax_row] - 1;
    }
  else
    px2vox[ax_row][1] = 1.0;
  px2vox[ax_sag][2] = 1.0;
  px2vox[ax_sag][3] = slice;
  px2vox[3][3] = 1.0;

  s = g_new0 (CsSagittal, 1);
  s->width = vol->dim[ax_col];
  s->height = vol->dim[ax_row];
  s->spacing[0] = vol->pixdim[ax_col];
  s->spacing[1] = vol->pixdim[ax_row];
  s->slice = slice;
  s->sagittal_axis = ax_sag;
  memcpy (s->volume_dim, vol->dim, sizeof s->volume_dim);
  memcpy (s->px2vox, px2vox, sizeof px2vox);
  mat4_mul ((const double (*)[4]) vol->vox2mm, (const double (*)[4]) px2vox, s->px2mm);
  s->data = g_new (float, (gsize) s->width * s->height);

  for (int r = 0; r < s->height; r++)
    for (int c = 0; c < s->width; c++)
      {
        int v[3];
        for (int a = 0; a < 3; a++)
          v[a] = (int) lround (px2vox[a][0] * c + px2vox[a][1] * r + px2vox[a][3]);
        s->data[(gsize) r * s->width + c] = cs_volume_at (vol, v[0], v[1], v[2]);
      }
  return s;
}

void
cs_sagittal_free (CsSagittal *s)
{
  if (s == NULL)
    return;
  g_free (s->data);
  g_free (s);
}

/* ---- writing ---- */

static gboolean
datatype_range (int datatype, double *lo, double *hi)
{
  switch (datatype)
    {
    case DT_UINT8: *lo = 0; *hi = G_MAXUINT8; return TRUE;
    case DT_INT8: *lo = G_MININT8; *hi = G_MAXINT8; return TRUE;
    case DT_INT16: *lo = G_MININT16; *hi = G_MAXINT16; return TRUE;
    case DT_UINT16: *lo = 0; *hi = G_MAXUINT16; return TRUE;
    case DT_INT32: *lo = G_MININT32; *hi = G_MAXINT32; return TRUE;
    case DT_UINT32: *lo = 0; *hi = G_MAXUINT32; return TRUE;
    default: return FALSE;   /* float types */
    }
}

/* Refuses values the file could not hold (NaN/Inf anywhere; out-of-range integers). */
static gboolean
check_values_fit (const CsVolume *vol, const char *path, int datatype, GError **error)
{
  gsize n = cs_volume_n_voxels (vol);
  double lo = 0, hi = 0;
  gboolean integer = datatype_range (datatype, &lo, &hi);

  for (gsize v = 0; v < n; v++)
    {
      double x = vol->data[v];
      if (!isfinite (x))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                       "%s: not written: voxel %" G_GSIZE_FORMAT " is %s", path, v,
                       isnan (x) ? "NaN" : "infinite");
          return FALSE;
        }
      if (integer)
        {
          double rounded = round (x);
          if (rounded < lo || rounded > hi)
            {
              g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                           "%s: not written: voxel %" G_GSIZE_FORMAT " is %g, outside the "
                           "range of %s", path, v, x, cs_nifti_datatype_name (datatype));
              return FALSE;
            }
        }
    }
  return TRUE;
}

static void
encode_voxels (const float *src, gsize n, int datatype, void *dst)
{
#define CS_ENCODE_INT(type)                              \
  {                                                      \
    type *d = dst;                                       \
    for (gsize v = 0; v < n; v++)                        \
      d[v] = (type) round ((double) src[v]);             \
  }                                                      \
  break;
  switch (datatype)
    {
    case DT_UINT8: CS_ENCODE_INT (guint8)
    case DT_INT8: CS_ENCODE_INT (gint8)
    case DT_INT16: CS_ENCODE_INT (gint16)
    case DT_UINT16: CS_ENCODE_INT (guint16)
    case DT_INT32: CS_ENCODE_INT (gint32)
    case DT_UINT32: CS_ENCODE_INT (guint32)
    case DT_FLOAT32:
      memcpy (dst, src, n * sizeof (float));
      break;
    case DT_FLOAT64:
      {
        double *d = dst;
        for (gsize v = 0; v < n; v++)
          d[v] = src[v];
      }
      break;
    default:
      g_assert_not_reached ();
    }
#undef CS_ENCODE_INT
}

/* Fills a NIfTI-1 (or NIfTI-2 for dims over 32767) header for VOL as DATATYPE. */
static gsize
build_header (const CsVolume *vol, int datatype, guint8 *buf)
{
  nifti_dmat44 m;
  double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
  gboolean v2 = vol->dim[0] > G_MAXINT16 || vol->dim[1] > G_MAXINT16
                || vol->dim[2] > G_MAXINT16;

  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      m.m[i][j] = vol->vox2mm[i][j];
  nifti_dmat44_to_quatern (m, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);

  if (!v2)
    {
      nifti_1_header h;
      memset (&h, 0, sizeof h);
      h.sizeof_hdr = 348;
      h.dim[0] = 3;
      for (int i = 0; i < 3; i++)
        h.dim[i + 1] = (short) vol->dim[i];
      for (int i = 4; i < 8; i++)
        h.dim[i] = 1;
      h.datatype = (short) datatype;
      h.bitpix = (short) (8 * bytes_per_voxel (datatype));
      h.pixdim[0] = (float) qfac;
      h.pixdim[1] = (float) vol->pixdim[0];
      h.pixdim[2] = (float) vol->pixdim[1];
      h.pixdim[3] = (float) vol->pixdim[2];
      for (int i = 4; i < 8; i++)
        h.pixdim[i] = 1.0f;
      h.vox_offset = 352.0f;
      h.scl_slope = 1.0f;
      h.scl_inter = 0.0f;
      h.xyzt_units = NIFTI_UNITS_MM;
      h.qform_code = NIFTI_XFORM_ALIGNED_ANAT;
      h.sform_code = NIFTI_XFORM_ALIGNED_ANAT;
      h.quatern_b = (float) qb;
      h.quatern_c = (float) qc;
      h.quatern_d = (float) qd;
      h.qoffset_x = (float) qx;
      h.qoffset_y = (float) qy;
      h.qoffset_z = (float) qz;
      for (int j = 0; j < 4; j++)
        {
          h.srow_x[j] = (float) vol->vox2mm[0][j];
          h.srow_y[j] = (float) vol->vox2mm[1][j];
          h.srow_z[j] = (float) vol->vox2mm[2][j];
        }
      g_strlcpy (h.descrip, "Cordscope", sizeof h.descrip);
      memcpy (h.magic, "n+1", 4);
      memcpy (buf, &h, sizeof h);
      memset (buf + sizeof h, 0, 4);   /* no extensions */
      return 352;
    }
  else
    {
      nifti_2_header h;
      memset (&h, 0, sizeof h);
      h.sizeof_hdr = 540;
      memcpy (h.magic, "n+2\0\r\n\032\n", 8);
      h.dim[0] = 3;
      for (int i = 0; i < 3; i++)
        h.dim[i + 1] = vol->dim[i];
      for (int i = 4; i < 8; i++)
        h.dim[i] = 1;
      h.datatype = (short) datatype;
      h.bitpix = (short) (8 * bytes_per_voxel (datatype));
      h.pixdim[0] = qfac;
      for (int i = 0; i < 3; i++)
        h.pixdim[i + 1] = vol->pixdim[i];
      for (int i = 4; i < 8; i++)
        h.pixdim[i] = 1.0;
      h.vox_offset = 544;
      h.scl_slope = 1.0;
      h.scl_inter = 0.0;
      h.xyzt_units = NIFTI_UNITS_MM;
      h.qform_code = NIFTI_XFORM_ALIGNED_ANAT;
      h.sform_code = NIFTI_XFORM_ALIGNED_ANAT;
      h.quatern_b = qb;
      h.quatern_c = qc;
      h.quatern_d = qd;
      h.qoffset_x = qx;
      h.qoffset_y = qy;
      h.qoffset_z = qz;
      for (int j = 0; j < 4; j++)
        {
          h.srow_x[j] = vol->vox2mm[0][j];
          h.srow_y[j] = vol->vox2mm[1][j];
          h.srow_z[j] = vol->vox2mm[2][j];
        }
      g_strlcpy (h.descrip, "Cordscope", sizeof h.descrip);
      memcpy (buf, &h, sizeof h);
      memset (buf + sizeof h, 0, 4);
      return 544;
    }
}

gboolean
cs_volume_save (const CsVolume *vol, const char *path, int datatype, GError **error)
{
  g_autofree char *dir = NULL;
  g_autofree char *tmp = NULL;
  guint8 header[544];
  gsize header_len, slice_vox, bpv;
  g_autofree guint8 *chunk = NULL;
  int fd, sync_fd;
  gzFile gz;
  gboolean ok = TRUE;
  int saved_errno = 0;

  g_return_val_if_fail (vol != NULL && vol->data != NULL && path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!name_is_nifti (path))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: not written: a NIfTI file name must end in .nii or .nii.gz", path);
      return FALSE;
    }
  bpv = (gsize) bytes_per_voxel (datatype);
  if (bpv == 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_DATATYPE,
                   "%s: not written: datatype %d is not one Cordscope writes", path,
                   datatype);
      return FALSE;
    }
  if (!affine_is_usable ((const double (*)[4]) vol->vox2mm))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: not written: the volume's voxel-to-mm affine is singular", path);
      return FALSE;
    }
  if (!check_values_fit (vol, path, datatype, error))
    return FALSE;

  header_len = build_header (vol, datatype, header);

  /* temp file in the same folder, so the final rename is atomic */
  dir = g_path_get_dirname (path);
  tmp = g_strdup_printf ("%s/.%s.XXXXXX", dir, basename_of (path));
  fd = g_mkstemp (tmp);
  if (fd < 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot create a file in %s: %s",
                   path, dir, g_strerror (errno));
      return FALSE;
    }
  fchmod (fd, 0644);
  sync_fd = dup (fd);
  /* Level 1: MRI noise barely compresses further, and level 6 takes most of a save. */
  gz = gzdopen (fd, name_is_gz (path) ? "wb1" : "wbT");
  if (gz == NULL)
    {
      close (fd);
      ok = FALSE;
      saved_errno = ENOMEM;
    }

  slice_vox = (gsize) vol->dim[0] * vol->dim[1];
  chunk = g_malloc (slice_vox * bpv);
  if (ok && gzwrite (gz, header, (unsigned) header_len) != (int) header_len)
    ok = FALSE;
  for (int k = 0; ok && k < vol->dim[2]; k++)
    {
      encode_voxels (vol->data + (gsize) k * slice_vox, slice_vox, datatype, chunk);
      if (gzwrite (gz, chunk, (unsigned) (slice_vox * bpv)) != (int) (slice_vox * bpv))
        ok = FALSE;
    }
  if (!ok && gz)
    saved_errno = errno;
  if (gz && gzclose (gz) != Z_OK && ok)
    {
      ok = FALSE;
      saved_errno = errno;
    }
  if (ok && sync_fd >= 0 && fsync (sync_fd) != 0)
    {
      ok = FALSE;
      saved_errno = errno;
    }
  if (sync_fd >= 0)
    close (sync_fd);
  if (ok && g_rename (tmp, path) != 0)
    {
      ok = FALSE;
      saved_errno = errno;
    }
  if (!ok)
    {
      g_unlink (tmp);
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot write the file: %s",
                   path, saved_errno ? g_strerror (saved_errno) : "write error");
      return FALSE;
    }
  return TRUE;
}
