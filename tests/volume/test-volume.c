/* test-volume: NIfTI reading (every datatype, scaling, NIfTI-2, byte order, xform
 * fallbacks), writing, orientation and sagittal extraction on synthetic volumes whose
 * answers are worked out by hand, and every kind of bad input.
 * Files are written here byte by byte (not through the code under test). */
#include "cs-test-util.h"
#include "io/cs-volume.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <nifti2_io.h>
#include <zlib.h>

/* ---- a raw NIfTI writer, independent of cs-volume.c ---- */

typedef struct
{
  int version;            /* 1 or 2 */
  gboolean big_endian;    /* write the opposite byte order of this machine */
  gboolean gz;
  gint64 dim[8];
  double pixdim[8];
  int datatype;
  double vox_offset;      /* 0: the default (352 / 544) */
  double slope, inter;
  int qform_code, sform_code;
  double quatern[3], qoffset[3];
  double srow[3][4];
  const char *magic;      /* NULL: the right one */
  gboolean lying_offset;  /* data at the default place, whatever vox_offset says */
} RawNifti;

static void
raw_defaults (RawNifti *r, int datatype, int nx, int ny, int nz)
{
  memset (r, 0, sizeof *r);
  r->version = 1;
  r->dim[0] = 3;
  r->dim[1] = nx;
  r->dim[2] = ny;
  r->dim[3] = nz;
  for (int i = 4; i < 8; i++)
    r->dim[i] = 1;
  for (int i = 0; i < 8; i++)
    r->pixdim[i] = 1.0;
  r->datatype = datatype;
  r->sform_code = 1;
  r->srow[0][0] = r->srow[1][1] = r->srow[2][2] = 1.0;
}

static void
swap_bytes (void *p, gsize n)
{
  guint8 *b = p;
  for (gsize i = 0; i < n / 2; i++)
    {
      guint8 t = b[i];
      b[i] = b[n - 1 - i];
      b[n - 1 - i] = t;
    }
}

#define SWAP_FIELD(f) swap_bytes (&(f), sizeof (f))
#define SWAP_ARRAY(a) for (gsize q_ = 0; q_ < G_N_ELEMENTS (a); q_++) SWAP_FIELD ((a)[q_])

/* Field-by-field byte swap, written from the NIfTI-1 standard's layout. */
static void
swap_n1 (nifti_1_header *h)
{
  SWAP_FIELD (h->sizeof_hdr); SWAP_FIELD (h->extents); SWAP_FIELD (h->session_error);
  SWAP_ARRAY (h->dim); SWAP_FIELD (h->intent_p1); SWAP_FIELD (h->intent_p2);
  SWAP_FIELD (h->intent_p3); SWAP_FIELD (h->intent_code); SWAP_FIELD (h->datatype);
  SWAP_FIELD (h->bitpix); SWAP_FIELD (h->slice_start); SWAP_ARRAY (h->pixdim);
  SWAP_FIELD (h->vox_offset); SWAP_FIELD (h->scl_slope); SWAP_FIELD (h->scl_inter);
  SWAP_FIELD (h->slice_end); SWAP_FIELD (h->cal_max); SWAP_FIELD (h->cal_min);
  SWAP_FIELD (h->slice_duration); SWAP_FIELD (h->toffset); SWAP_FIELD (h->glmax);
  SWAP_FIELD (h->glmin); SWAP_FIELD (h->qform_code); SWAP_FIELD (h->sform_code);
  SWAP_FIELD (h->quatern_b); SWAP_FIELD (h->quatern_c); SWAP_FIELD (h->quatern_d);
  SWAP_FIELD (h->qoffset_x); SWAP_FIELD (h->qoffset_y); SWAP_FIELD (h->qoffset_z);
  SWAP_ARRAY (h->srow_x); SWAP_ARRAY (h->srow_y); SWAP_ARRAY (h->srow_z);
}

static void
swap_n2 (nifti_2_header *h)
{
  SWAP_FIELD (h->sizeof_hdr); SWAP_FIELD (h->datatype); SWAP_FIELD (h->bitpix);
  SWAP_ARRAY (h->dim); SWAP_FIELD (h->intent_p1); SWAP_FIELD (h->intent_p2);
  SWAP_FIELD (h->intent_p3); SWAP_ARRAY (h->pixdim); SWAP_FIELD (h->vox_offset);
  SWAP_FIELD (h->scl_slope); SWAP_FIELD (h->scl_inter); SWAP_FIELD (h->cal_max);
  SWAP_FIELD (h->cal_min); SWAP_FIELD (h->slice_duration); SWAP_FIELD (h->toffset);
  SWAP_FIELD (h->slice_start); SWAP_FIELD (h->slice_end); SWAP_FIELD (h->qform_code);
  SWAP_FIELD (h->sform_code); SWAP_FIELD (h->quatern_b); SWAP_FIELD (h->quatern_c);
  SWAP_FIELD (h->quatern_d); SWAP_FIELD (h->qoffset_x); SWAP_FIELD (h->qoffset_y);
  SWAP_FIELD (h->qoffset_z); SWAP_ARRAY (h->srow_x); SWAP_ARRAY (h->srow_y);
  SWAP_ARRAY (h->srow_z); SWAP_FIELD (h->slice_code); SWAP_FIELD (h->xyzt_units);
  SWAP_FIELD (h->intent_code);
}

static int
elem_size (int datatype)
{
  switch (datatype)
    {
    case DT_UINT8: case DT_INT8: return 1;
    case DT_INT16: case DT_UINT16: return 2;
    case DT_INT32: case DT_UINT32: case DT_FLOAT32: return 4;
    case DT_FLOAT64: case DT_INT64: case DT_COMPLEX64: return 8;
    default: return 1;
    }
}

/* Writes header + data (DATA in this machine's order, LEN bytes) to DIR/NAME. */
static char *
raw_write (const char *dir, const char *name, const RawNifti *r, const void *data, gsize len)
{
  char *path = g_build_filename (dir, name, NULL);
  GByteArray *bytes = g_byte_array_new ();
  guint8 pad[8] = { 0 };
  gsize offset;

  if (r->version == 1)
    {
      nifti_1_header h;
      memset (&h, 0, sizeof h);
      h.sizeof_hdr = 348;
      for (int i = 0; i < 8; i++)
        {
          h.dim[i] = (short) r->dim[i];
          h.pixdim[i] = (float) r->pixdim[i];
        }
      h.datatype = (short) r->datatype;
      h.bitpix = (short) (8 * elem_size (r->datatype));
      h.vox_offset = (float) (r->vox_offset != 0 ? r->vox_offset : 352);
      h.scl_slope = (float) r->slope;
      h.scl_inter = (float) r->inter;
      h.qform_code = (short) r->qform_code;
      h.sform_code = (short) r->sform_code;
      h.quatern_b = (float) r->quatern[0];
      h.quatern_c = (float) r->quatern[1];
      h.quatern_d = (float) r->quatern[2];
      h.qoffset_x = (float) r->qoffset[0];
      h.qoffset_y = (float) r->qoffset[1];
      h.qoffset_z = (float) r->qoffset[2];
      for (int j = 0; j < 4; j++)
        {
          h.srow_x[j] = (float) r->srow[0][j];
          h.srow_y[j] = (float) r->srow[1][j];
          h.srow_z[j] = (float) r->srow[2][j];
        }
      memcpy (h.magic, r->magic ? r->magic : "n+1", 4);
      offset = (gsize) h.vox_offset;
      if (r->big_endian)
        swap_n1 (&h);
      g_byte_array_append (bytes, (guint8 *) &h, sizeof h);
    }
  else
    {
      nifti_2_header h;
      memset (&h, 0, sizeof h);
      h.sizeof_hdr = 540;
      memcpy (h.magic, r->magic ? r->magic : "n+2\0\r\n\032\n", 8);
      for (int i = 0; i < 8; i++)
        {
          h.dim[i] = r->dim[i];
          h.pixdim[i] = r->pixdim[i];
        }
      h.datatype = (short) r->datatype;
      h.bitpix = (short) (8 * elem_size (r->datatype));
      h.vox_offset = (int64_t) (r->vox_offset != 0 ? r->vox_offset : 544);
      h.scl_slope = r->slope;
      h.scl_inter = r->inter;
      h.qform_code = r->qform_code;
      h.sform_code = r->sform_code;
      h.quatern_b = r->quatern[0];
      h.quatern_c = r->quatern[1];
      h.quatern_d = r->quatern[2];
      h.qoffset_x = r->qoffset[0];
      h.qoffset_y = r->qoffset[1];
      h.qoffset_z = r->qoffset[2];
      for (int j = 0; j < 4; j++)
        {
          h.srow_x[j] = r->srow[0][j];
          h.srow_y[j] = r->srow[1][j];
          h.srow_z[j] = r->srow[2][j];
        }
      offset = (gsize) h.vox_offset;
      if (r->big_endian)
        swap_n2 (&h);
      g_byte_array_append (bytes, (guint8 *) &h, sizeof h);
    }
  if (r->lying_offset)
    offset = r->version == 1 ? 352 : 544;
  while (bytes->len < offset)
    g_byte_array_append (bytes, pad, 1);
  if (data && len)
    {
      gsize start = bytes->len, es = (gsize) elem_size (r->datatype);
      g_byte_array_append (bytes, data, (guint) len);
      if (r->big_endian)
        for (gsize p = start; p + es <= bytes->len; p += es)
          swap_bytes (bytes->data + p, es);
    }

  if (r->gz)
    {
      gzFile gz = gzopen (path, "wb");
      g_assert_nonnull (gz);
      g_assert_cmpint (gzwrite (gz, bytes->data, bytes->len), ==, (int) bytes->len);
      g_assert_cmpint (gzclose (gz), ==, Z_OK);
    }
  else
    g_assert_true (g_file_set_contents (path, (char *) bytes->data, bytes->len, NULL));
  g_byte_array_unref (bytes);
  return path;
}

static int
count_entries (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  int n = 0;
  while (d && g_dir_read_name (d))
    n++;
  if (d)
    g_dir_close (d);
  return n;
}

/* Loads PATH expecting CODE, and that the message names the file. */
static void
assert_load_fails (const char *path, int code, const char *words)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CsVolume) vol = cs_volume_load (path, &error);

  g_assert_null (vol);
  g_assert_error (error, CS_IO_ERROR, code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, path));
  if (words)
    g_assert_nonnull (strstr (error->message, words));
}

/* ---- synthetic volumes with a hand-made orientation ---- */

/* vox2mm from axis codes: voxel axis a moves along world axis of CODES[a] with sign,
 * with voxel size SIZE[a]; an arbitrary offset. */
static void
affine_from_codes (const char *codes, const double size[3], double m[4][4])
{
  memset (m, 0, sizeof (double) * 16);
  for (int a = 0; a < 3; a++)
    {
      const char *p = strchr ("RLAPSI", codes[a]);
      int world = (int) (p - "RLAPSI") / 2;
      double sign = ((p - "RLAPSI") % 2) ? -1.0 : 1.0;
      m[world][a] = sign * size[a];
    }
  m[0][3] = 12.5;
  m[1][3] = -40.0;
  m[2][3] = 7.25;
  m[3][3] = 1.0;
}

static CsVolume *
make_coded_volume (const char *codes, const int dim[3])
{
  const double size[3] = { 0.5, 0.8, 1.2 };
  double m[4][4];
  CsVolume *vol;

  affine_from_codes (codes, size, m);
  vol = cs_volume_new (dim, (const double (*)[4]) m);
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i = 0; i < dim[0]; i++)
        vol->data[((gsize) k * dim[1] + j) * dim[0] + i] = (float) (i + 10 * j + 100 * k);
  return vol;
}

typedef struct
{
  const char *codes;
  int sagittal_axis, width, height;
  /* voxels at display (0,0) and at (width-1, height-1) on slice s: -1 stands for s */
  int first[3], last[3];
} Orientation;

/* Worked out by hand for dims (4, 5, 6): column 0 is the largest A, row 0 the largest S. */
static const Orientation orientations[] = {
  /* RAS: i=R (sagittal), j=A (columns: j=4 first), k=S (rows: k=5 first) */
  { "RAS", 0, 5, 6, { -1, 4, 5 }, { -1, 0, 0 } },
  /* LAS (PAM50): same display as RAS */
  { "LAS", 0, 5, 6, { -1, 4, 5 }, { -1, 0, 0 } },
  /* PSR (errsm30): i=P so column 0 is i=0; j=S so row 0 is j=4; k=R sagittal */
  { "PSR", 2, 4, 5, { 0, 4, -1 }, { 3, 0, -1 } },
  /* LPI: j=P so column 0 is j=0; k=I so row 0 is k=0 */
  { "LPI", 0, 5, 6, { -1, 0, 0 }, { -1, 4, 5 } },
  /* ASR: i=A so column 0 is i=3; j=S so row 0 is j=4; k=R sagittal */
  { "ASR", 2, 4, 5, { 3, 4, -1 }, { 0, 0, -1 } },
  /* SLP: i=S rows (i=3 first), j=L sagittal, k=P columns (k=0 first) */
  { "SLP", 1, 6, 4, { 3, -1, 0 }, { 0, -1, 5 } },
  /* IPR: i=I rows (i=0 first), j=P columns (j=0 first), k=R sagittal */
  { "IPR", 2, 5, 4, { 0, 0, -1 }, { 3, 4, -1 } },
};

static void
apply (const double m[4][4], const double in[4], double out[4])
{
  for (int i = 0; i < 4; i++)
    out[i] = m[i][0] * in[0] + m[i][1] * in[1] + m[i][2] * in[2] + m[i][3] * in[3];
}

static void
test_sagittal_orientations (void)
{
  const int dim[3] = { 4, 5, 6 };

  for (gsize o = 0; o < G_N_ELEMENTS (orientations); o++)
    {
      const Orientation *t = &orientations[o];
      g_autoptr (CsVolume) vol = make_coded_volume (t->codes, dim);
      char codes[4];

      cs_volume_axcodes (vol, codes);
      g_assert_cmpstr (codes, ==, t->codes);
      g_assert_cmpint (cs_volume_sagittal_axis (vol), ==, t->sagittal_axis);
      g_assert_cmpint (cs_volume_n_sagittal_slices (vol), ==, dim[t->sagittal_axis]);

      for (int s = 0; s < dim[t->sagittal_axis]; s++)
        {
          g_autoptr (CsSagittal) sag = cs_volume_extract_sagittal (vol, s);
          int first[3], last[3];

          g_assert_cmpint (sag->width, ==, t->width);
          g_assert_cmpint (sag->height, ==, t->height);
          g_assert_cmpint (sag->sagittal_axis, ==, t->sagittal_axis);
          g_assert_cmpint (sag->slice, ==, s);
          for (int a = 0; a < 3; a++)
            {
              first[a] = t->first[a] < 0 ? s : t->first[a];
              last[a] = t->last[a] < 0 ? s : t->last[a];
            }
          g_assert_cmpfloat (sag->data[0], ==, cs_volume_at (vol, first[0], first[1], first[2]));
          g_assert_cmpfloat (sag->data[(gsize) sag->width * sag->height - 1], ==,
                             cs_volume_at (vol, last[0], last[1], last[2]));

          /* every pixel: px2vox finds its voxel, px2mm its position; rows go S->I and
           * columns A->P in millimetres */
          for (int r = 0; r < sag->height; r++)
            for (int c = 0; c < sag->width; c++)
              {
                double px[4] = { c, r, 0, 1 }, v[4], mm[4], mm2[4];
                apply ((const double (*)[4]) sag->px2vox, px, v);
                apply ((const double (*)[4]) sag->px2mm, px, mm);
                apply ((const double (*)[4]) vol->vox2mm, v, mm2);
                g_assert_cmpfloat (sag->data[(gsize) r * sag->width + c], ==,
                                   cs_volume_at (vol, (int) v[0], (int) v[1], (int) v[2]));
                g_assert_cmpfloat (v[t->sagittal_axis], ==, s);
                for (int a = 0; a < 3; a++)
                  g_assert_cmpfloat_with_epsilon (mm[a], mm2[a], 1e-12);
              }
          g_assert_cmpfloat (sag->px2mm[2][1], <, 0.0);   /* down a row: inferior */
          g_assert_cmpfloat (sag->px2mm[1][0], <, 0.0);   /* right a column: posterior */
          g_assert_cmpfloat_with_epsilon (sag->spacing[0], fabs (sag->px2mm[1][0]), 1e-12);
          g_assert_cmpfloat_with_epsilon (sag->spacing[1], fabs (sag->px2mm[2][1]), 1e-12);
        }
    }
}

/* Rotations about the R axis: below 45 degrees j stays A; beyond it j becomes S. */
static void
test_axcodes_oblique (void)
{
  const int dim[3] = { 3, 8, 9 };
  struct { double deg; const char *codes; } cases[] = {
    { 20, "RAS" }, { -30, "RAS" }, { 60, "RSP" }, { -60, "RIA" }, { 170, "RPI" },
  };

  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      double t = cases[c].deg * G_PI / 180.0;
      /* columns: i -> (1,0,0); j -> (0, cos, sin); k -> (0, -sin, cos) */
      double m[4][4] = { { 1, 0, 0, 0 }, { 0, cos (t), -sin (t), 0 },
                         { 0, sin (t), cos (t), 0 }, { 0, 0, 0, 1 } };
      g_autoptr (CsVolume) vol = cs_volume_new (dim, (const double (*)[4]) m);
      g_autoptr (CsSagittal) sag = NULL;
      char codes[4];

      cs_volume_axcodes (vol, codes);
      g_assert_cmpstr (codes, ==, cases[c].codes);
      g_assert_cmpint (cs_volume_sagittal_axis (vol), ==, 0);
      sag = cs_volume_extract_sagittal (vol, 1);
      /* display rows still go down in S, columns back in A, within the rotation */
      g_assert_cmpfloat (sag->px2mm[2][1], <, 0.0);
      g_assert_cmpfloat (sag->px2mm[1][0], <, 0.0);
    }

  /* a sheared, scaled oblique affine: nibabel.aff2axcodes gives ('P', 'S', 'L') for
   * [[0.1,0.2,-0.9,0],[-1.1,0.3,0.1,0],[0.2,2.0,0.4,0],[0,0,0,1]] (worked out with
   * /usr/bin/python3 -c "import nibabel as n;print(n.aff2axcodes(...))") */
  {
    double m[4][4] = { { 0.1, 0.2, -0.9, 0 }, { -1.1, 0.3, 0.1, 0 }, { 0.2, 2.0, 0.4, 0 },
                       { 0, 0, 0, 1 } };
    g_autoptr (CsVolume) vol = cs_volume_new (dim, (const double (*)[4]) m);
    char codes[4];
    cs_volume_axcodes (vol, codes);
    g_assert_cmpstr (codes, ==, "PSL");
    g_assert_cmpint (cs_volume_sagittal_axis (vol), ==, 2);
  }
}

/* ---- reading ---- */

static const int all_types[] = { DT_UINT8, DT_INT8, DT_INT16, DT_UINT16, DT_INT32, DT_UINT32,
                                 DT_FLOAT32, DT_FLOAT64 };

/* Fills BUF with N values of DATATYPE: v*3 - 7 for signed types, v*3 for unsigned. */
static double
raw_value (int datatype, gsize v)
{
  gboolean is_unsigned = datatype == DT_UINT8 || datatype == DT_UINT16 || datatype == DT_UINT32;
  double x = is_unsigned ? (double) (v * 3 % 250) : (double) (v * 3 % 250) - 100.0;
  if (datatype == DT_FLOAT32 || datatype == DT_FLOAT64)
    x += 0.25;
  return x;
}

static gsize
fill_raw (int datatype, gsize n, guint8 *buf)
{
  for (gsize v = 0; v < n; v++)
    {
      double x = raw_value (datatype, v);
      switch (datatype)
        {
        case DT_UINT8: ((guint8 *) buf)[v] = (guint8) x; break;
        case DT_INT8: ((gint8 *) buf)[v] = (gint8) x; break;
        case DT_INT16: ((gint16 *) buf)[v] = (gint16) x; break;
        case DT_UINT16: ((guint16 *) buf)[v] = (guint16) x; break;
        case DT_INT32: ((gint32 *) buf)[v] = (gint32) x; break;
        case DT_UINT32: ((guint32 *) buf)[v] = (guint32) x; break;
        case DT_FLOAT32: ((float *) buf)[v] = (float) x; break;
        case DT_FLOAT64: ((double *) buf)[v] = x; break;
        default: g_assert_not_reached ();
        }
    }
  return n * (gsize) elem_size (datatype);
}

static void
test_read_datatypes_and_scaling (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-volume-XXXXXX");
  const int nx = 5, ny = 4, nz = 3;
  const gsize n = (gsize) nx * ny * nz;
  guint8 buf[60 * 8];
  /* slope/inter and what nibabel does with them */
  struct { double slope, inter, want_slope, want_inter; } scl[] = {
    { 0.0, 0.0, 1.0, 0.0 },     /* zero slope: no scaling (inter ignored) */
    { 0.0, 5.0, 1.0, 0.0 },
    { NAN, 3.0, 1.0, 0.0 },     /* non-finite slope: no scaling */
    { 1.0, 0.0, 1.0, 0.0 },
    { 0.5, -10.0, 0.5, -10.0 },
    { -2.0, 1.5, -2.0, 1.5 },
  };

  for (int version = 1; version <= 2; version++)
    for (int big = 0; big <= 1; big++)
      for (int gz = 0; gz <= 1; gz++)
        for (gsize t = 0; t < G_N_ELEMENTS (all_types); t++)
          for (gsize s = 0; s < G_N_ELEMENTS (scl); s++)
            {
              RawNifti r;
              g_autofree char *name = NULL, *path = NULL;
              g_autoptr (GError) error = NULL;
              g_autoptr (CsVolume) vol = NULL;
              gsize len;

              raw_defaults (&r, all_types[t], nx, ny, nz);
              r.version = version;
              r.big_endian = big;
              r.gz = gz;
              r.slope = scl[s].slope;
              r.inter = scl[s].inter;
              len = fill_raw (all_types[t], n, buf);
              name = g_strdup_printf ("v%d_b%d_t%d_s%d.nii%s", version, big, all_types[t],
                                      (int) s, gz ? ".gz" : "");
              path = raw_write (dir, name, &r, buf, len);
              vol = cs_volume_load (path, &error);
              g_assert_no_error (error);
              g_assert_cmpint (vol->nifti_version, ==, version);
              g_assert_cmpint (vol->datatype, ==, all_types[t]);
              g_assert_cmpint (vol->dim[0], ==, nx);
              g_assert_cmpint (vol->dim[1], ==, ny);
              g_assert_cmpint (vol->dim[2], ==, nz);
              g_assert_cmpstr (vol->path, ==, path);
              for (gsize v = 0; v < n; v++)
                g_assert_cmpfloat_with_epsilon (vol->data[v],
                                                raw_value (all_types[t], v) * scl[s].want_slope
                                                + scl[s].want_inter, 1e-5);
              g_unlink (path);
            }
  cs_test_remove_tree (dir);
}

/* qform only: 90 degrees about z (quaternion d = sin 45), pixdim (2,3,4), qfac -1 */
static void
test_read_qform_and_fallback (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-volume-XXXXXX");
  guint8 data[4 * 5 * 6] = { 0 };
  RawNifti r;

  raw_defaults (&r, DT_UINT8, 4, 5, 6);
  r.sform_code = 0;
  r.qform_code = 1;
  r.quatern[2] = sqrt (0.5);
  r.qoffset[0] = 10;
  r.qoffset[1] = 20;
  r.qoffset[2] = 30;
  r.pixdim[0] = -1;
  r.pixdim[1] = 2;
  r.pixdim[2] = 3;
  r.pixdim[3] = 4;
  {
    g_autofree char *path = raw_write (dir, "q.nii", &r, data, sizeof data);
    g_autoptr (GError) error = NULL;
    g_autoptr (CsVolume) vol = cs_volume_load (path, &error);
    /* R = [[0,-1,0],[1,0,0],[0,0,1]], columns scaled by (2, 3, -4) */
    const double want[3][4] = { { 0, -3, 0, 10 }, { 2, 0, 0, 20 }, { 0, 0, -4, 30 } };
    char codes[4];
    g_assert_no_error (error);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++)
        g_assert_cmpfloat_with_epsilon (vol->vox2mm[i][j], want[i][j], 1e-6);
    g_assert_cmpfloat_with_epsilon (vol->pixdim[2], 4.0, 1e-9);
    cs_volume_axcodes (vol, codes);
    g_assert_cmpstr (codes, ==, "ALI");
    g_assert_cmpint (cs_volume_sagittal_axis (vol), ==, 1);
  }

  /* sform set as well: the sform wins */
  r.sform_code = 2;
  memset (r.srow, 0, sizeof r.srow);
  r.srow[0][2] = 1.5;
  r.srow[1][0] = -1;
  r.srow[2][1] = 2;
  r.srow[0][3] = 4;
  {
    g_autofree char *path = raw_write (dir, "qs.nii", &r, data, sizeof data);
    g_autoptr (CsVolume) vol = cs_volume_load (path, NULL);
    char codes[4];
    cs_volume_axcodes (vol, codes);
    g_assert_cmpstr (codes, ==, "PSR");
    g_assert_cmpfloat (vol->vox2mm[0][3], ==, 4.0);
    g_assert_cmpfloat_with_epsilon (vol->pixdim[2], 1.5, 1e-9);
  }

  /* neither: nibabel's base affine, x flipped and centred on the grid */
  r.sform_code = 0;
  r.qform_code = 0;
  {
    g_autofree char *path = raw_write (dir, "none.nii", &r, data, sizeof data);
    g_autoptr (CsVolume) vol = cs_volume_load (path, NULL);
    const double want[3][4] = { { -2, 0, 0, 3 }, { 0, 3, 0, -6 }, { 0, 0, 4, -10 } };
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++)
        g_assert_cmpfloat_with_epsilon (vol->vox2mm[i][j], want[i][j], 1e-9);
  }
  cs_test_remove_tree (dir);
}

/* A 4-D file gives its first volume; a 2-D one a single slice. */
static void
test_read_4d_and_2d (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-volume-XXXXXX");
  float data[3 * 2 * 2 * 3];
  RawNifti r;

  for (gsize v = 0; v < G_N_ELEMENTS (data); v++)
    data[v] = (float) v;
  raw_defaults (&r, DT_FLOAT32, 3, 2, 2);
  r.dim[0] = 4;
  r.dim[4] = 3;
  r.pixdim[4] = 0;   /* TR may be anything */
  {
    g_autofree char *path = raw_write (dir, "4d.nii.gz", &r, data, sizeof data);
    g_autoptr (GError) error = NULL;
    g_autoptr (CsVolume) vol = cs_volume_load (path, &error);
    g_assert_no_error (error);
    g_assert_cmpint (vol->volumes_in_file, ==, 3);
    g_assert_cmpint (vol->dim[2], ==, 2);
    for (int v = 0; v < 12; v++)
      g_assert_cmpfloat (vol->data[v], ==, v);
  }
  raw_defaults (&r, DT_FLOAT32, 3, 4, 7);
  r.dim[0] = 2;
  r.pixdim[3] = 0;   /* unused axis */
  {
    g_autofree char *path = raw_write (dir, "2d.nii", &r, data, 12 * sizeof (float));
    g_autoptr (GError) error = NULL;
    g_autoptr (CsVolume) vol = cs_volume_load (path, &error);
    g_assert_no_error (error);
    g_assert_cmpint (vol->dim[2], ==, 1);
    g_assert_cmpint (vol->volumes_in_file, ==, 1);
    g_assert_cmpfloat (vol->data[11], ==, 11);
  }
  cs_test_remove_tree (dir);
}

/* ---- writing ---- */

static void
test_save_roundtrip (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-volume-XXXXXX");
  const int dim[3] = { 6, 5, 4 };
  /* exactly representable in float32, so the stored sform is exact */
  const double m[4][4] = { { 0, 0, 1.25, -32.25 }, { -0.5, 0, 0, 31.75 },
                           { 0, 0.75, 0, -19.5 }, { 0, 0, 0, 1 } };
  g_autoptr (CsVolume) vol = cs_volume_new (dim, m);
  const gsize n = cs_volume_n_voxels (vol);

  for (gsize t = 0; t < G_N_ELEMENTS (all_types); t++)
    for (int gz = 0; gz <= 1; gz++)
      {
        int dt = all_types[t];
        gboolean is_unsigned = dt == DT_UINT8 || dt == DT_UINT16 || dt == DT_UINT32;
        gboolean is_float = dt == DT_FLOAT32 || dt == DT_FLOAT64;
        g_autofree char *name = g_strdup_printf ("rt_%d.nii%s", dt, gz ? ".gz" : "");
        g_autofree char *path = g_build_filename (dir, name, NULL);
        g_autoptr (GError) error = NULL;
        g_autoptr (CsVolume) back = NULL;

        for (gsize v = 0; v < n; v++)
          vol->data[v] = (float) ((double) (v % 50) * 2.5 - (is_unsigned ? 0.0 : 60.0) + 0.25);
        /* rounding: halves go away from zero, others to nearest */
        vol->data[0] = 2.5f;
        vol->data[1] = is_unsigned ? 3.49f : -2.5f;
        g_assert_true (cs_volume_save (vol, path, dt, &error));
        g_assert_no_error (error);
        back = cs_volume_load (path, &error);
        g_assert_no_error (error);
        g_assert_cmpint (back->datatype, ==, dt);
        g_assert_cmpint (back->nifti_version, ==, 1);
        for (int i = 0; i < 3; i++)
          g_assert_cmpint (back->dim[i], ==, dim[i]);
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++)
            g_assert_cmpfloat (back->vox2mm[i][j], ==, m[i][j]);
        for (gsize v = 0; v < n; v++)
          g_assert_cmpfloat (back->data[v], ==, is_float ? vol->data[v] : roundf (vol->data[v]));
        if (!is_float)
          {
            g_assert_cmpfloat (back->data[0], ==, 3.0f);
            g_assert_cmpfloat (back->data[1], ==, is_unsigned ? 3.0f : -3.0f);
          }
      }
  /* a dimension beyond NIfTI-1's 16-bit dims is written as NIfTI-2 */
  {
    const int long_dim[3] = { 40000, 2, 1 };
    g_autoptr (CsVolume) wide = cs_volume_new (long_dim, m);
    g_autofree char *path = g_build_filename (dir, "wide.nii.gz", NULL);
    g_autoptr (CsVolume) back = NULL;
    for (gsize v = 0; v < cs_volume_n_voxels (wide); v++)
      wide->data[v] = (float) v * 0.5f;
    g_assert_true (cs_volume_save (wide, path, DT_FLOAT32, NULL));
    back = cs_volume_load (path, NULL);
    g_assert_nonnull (back);
    g_assert_cmpint (back->nifti_version, ==, 2);
    g_assert_cmpint (back->dim[0], ==, 40000);
    g_assert_cmpfloat (back->data[79999], ==, 79999 * 0.5f);
    g_assert_cmpfloat (back->vox2mm[1][0], ==, -0.5);
    g_unlink (path);
  }
  /* only the files we asked for: no temporary left over */
  g_assert_cmpint (count_entries (dir), ==, 2 * G_N_ELEMENTS (all_types));
  cs_test_remove_tree (dir);
}

static void
test_save_refuses (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-volume-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "out.nii.gz", NULL);
  const int dim[3] = { 3, 3, 3 };
  g_autoptr (CsVolume) vol = cs_volume_new (dim, NULL);
  g_autoptr (CsVolume) before = NULL;
  struct { int datatype; float value; int code; } cases[] = {
    { DT_UINT8, NAN, CS_IO_ERROR_VALUES },
    { DT_INT16, INFINITY, CS_IO_ERROR_VALUES },
    { DT_FLOAT32, NAN, CS_IO_ERROR_VALUES },
    { DT_UINT8, 255.6f, CS_IO_ERROR_VALUES },
    { DT_UINT8, -0.6f, CS_IO_ERROR_VALUES },
    { DT_INT8, 128.0f, CS_IO_ERROR_VALUES },
    { DT_INT64, 1.0f, CS_IO_ERROR_DATATYPE },
    { DT_COMPLEX64, 1.0f, CS_IO_ERROR_DATATYPE },
  };

  /* an existing file that failed saves must leave untouched */
  for (gsize v = 0; v < cs_volume_n_voxels (vol); v++)
    vol->data[v] = 7.0f;
  g_assert_true (cs_volume_save (vol, path, DT_UINT8, NULL));

  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (GError) error = NULL;
      vol->data[13] = cases[c].value;
      g_assert_false (cs_volume_save (vol, path, cases[c].datatype, &error));
      g_assert_error (error, CS_IO_ERROR, cases[c].code);
      g_assert_nonnull (strstr (error->message, path));
      g_test_message ("%s", error->message);
    }
  before = cs_volume_load (path, NULL);
  g_assert_nonnull (before);
  g_assert_cmpfloat (before->data[13], ==, 7.0f);
  g_assert_cmpint (count_entries (dir), ==, 1);

  /* a name that is not NIfTI, a folder that does not exist */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *bad = g_build_filename (dir, "out.img", NULL);
    vol->data[13] = 1.0f;
    g_assert_false (cs_volume_save (vol, bad, DT_FLOAT32, &error));
    g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT);
    g_assert_nonnull (strstr (error->message, bad));
  }
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *bad = g_build_filename (dir, "missing", "out.nii", NULL);
    g_assert_false (cs_volume_save (vol, bad, DT_FLOAT32, &error));
    g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
    g_assert_nonnull (strstr (error->message, bad));
  }
  /* a read-only folder (root ignores permissions, so only checked for other users) */
  if (geteuid () != 0)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *ro = g_build_filename (dir, "ro", NULL);
      g_autofree char *bad = g_build_filename (ro, "out.nii", NULL);
      g_assert_cmpint (g_mkdir (ro, 0555), ==, 0);
      g_assert_false (cs_volume_save (vol, bad, DT_FLOAT32, &error));
      g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
      g_assert_nonnull (strstr (error->message, bad));
      g_assert_cmpint (count_entries (ro), ==, 0);
      g_rmdir (ro);
    }
  g_assert_cmpint (count_entries (dir), ==, 1);
  cs_test_remove_tree (dir);
}

/* ---- bad input: every case refused with its code, naming the file ---- */

static void
test_bad_headers (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-volume-XXXXXX");
  guint8 data[4 * 4 * 4 * 4] = { 0 };
  RawNifti r;

#define BAD_CASE(name_, code_, words_, setup_)                                   \
  {                                                                              \
    g_autofree char *path_ = NULL;                                               \
    raw_defaults (&r, DT_UINT8, 4, 4, 4);                                        \
    setup_;                                                                      \
    path_ = raw_write (dir, name_, &r, data, sizeof data / 4);                   \
    assert_load_fails (path_, code_, words_);                                    \
  }

  BAD_CASE ("dim0-zero.nii", CS_IO_ERROR_HEADER, "dim[0]", r.dim[0] = 0);
  BAD_CASE ("dim0-eight.nii.gz", CS_IO_ERROR_HEADER, "dim[0]", (r.dim[0] = 8, r.gz = TRUE));
  BAD_CASE ("dim-zero.nii", CS_IO_ERROR_HEADER, "dimension 2", r.dim[2] = 0);
  BAD_CASE ("dim-negative.nii", CS_IO_ERROR_HEADER, "dimension 3", r.dim[3] = -4);
  BAD_CASE ("dim-negative-swapped.nii", CS_IO_ERROR_HEADER, "dimension 1",
            (r.dim[1] = -1, r.big_endian = TRUE));
  /* 32767^3 = 3.5e13 voxels: no allocation may be tried */
  BAD_CASE ("dims-huge.nii", CS_IO_ERROR_HEADER, "2^31",
            (r.dim[1] = r.dim[2] = r.dim[3] = 32767));
  /* NIfTI-2: 2^40 x 2^40 overflows 64 bits */
  BAD_CASE ("dims-overflow.nii", CS_IO_ERROR_HEADER, "2^31",
            (r.version = 2, r.dim[1] = r.dim[2] = (gint64) 1 << 40));
  /* 4-D x huge T: the data size overflows */
  BAD_CASE ("dims-t-overflow.nii", CS_IO_ERROR_HEADER, "data size",
            (r.version = 2, r.dim[0] = 4, r.dim[4] = (gint64) 1 << 62));
  BAD_CASE ("vector.nii", CS_IO_ERROR_HEADER, "per voxel", (r.dim[0] = 5, r.dim[5] = 3));
  BAD_CASE ("pixdim-zero.nii", CS_IO_ERROR_HEADER, "pixdim[2]", r.pixdim[2] = 0);
  BAD_CASE ("pixdim-negative.nii", CS_IO_ERROR_HEADER, "pixdim[1]", r.pixdim[1] = -1);
  BAD_CASE ("pixdim-nan.nii.gz", CS_IO_ERROR_HEADER, "pixdim[3]",
            (r.pixdim[3] = NAN, r.gz = TRUE));
  BAD_CASE ("offset-past-end.nii", CS_IO_ERROR_HEADER, "past the end",
            (r.vox_offset = 100000, r.lying_offset = TRUE));
  BAD_CASE ("offset-past-end.nii.gz", CS_IO_ERROR_HEADER, "past the end",
            (r.vox_offset = 100000, r.lying_offset = TRUE, r.gz = TRUE));
  BAD_CASE ("offset-past-end-v2.nii", CS_IO_ERROR_HEADER, "past the end",
            (r.version = 2, r.vox_offset = 1e15, r.lying_offset = TRUE));
  BAD_CASE ("offset-inside-header.nii", CS_IO_ERROR_HEADER, "vox_offset", r.vox_offset = 100);
  BAD_CASE ("int64.nii", CS_IO_ERROR_DATATYPE, "int64", r.datatype = DT_INT64);
  BAD_CASE ("complex.nii", CS_IO_ERROR_DATATYPE, "datatype 32", r.datatype = DT_COMPLEX64);
  BAD_CASE ("rgb.nii.gz", CS_IO_ERROR_DATATYPE, "datatype 128",
            (r.datatype = DT_RGB24, r.gz = TRUE));
  BAD_CASE ("made-up-type.nii", CS_IO_ERROR_DATATYPE, "datatype 999", r.datatype = 999);
  BAD_CASE ("sform-singular.nii", CS_IO_ERROR_HEADER, "sform", r.srow[1][1] = 0);
  BAD_CASE ("sform-nan.nii", CS_IO_ERROR_HEADER, "sform", r.srow[0][3] = NAN);
  BAD_CASE ("qform-bad.nii", CS_IO_ERROR_HEADER, "qform",
            (r.sform_code = 0, r.qform_code = 1, r.quatern[0] = 1.0, r.quatern[1] = 1.0));
  BAD_CASE ("inter-nan.nii", CS_IO_ERROR_HEADER, "intercept",
            (r.slope = 2.0, r.inter = NAN));
  BAD_CASE ("analyze-pair.nii", CS_IO_ERROR_FORMAT, ".hdr/.img", r.magic = "ni1");
  BAD_CASE ("no-magic.nii", CS_IO_ERROR_FORMAT, "magic", r.magic = "xyz");
#undef BAD_CASE
  cs_test_remove_tree (dir);
}

static void
test_bad_files (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-volume-XXXXXX");
  guint8 data[8 * 8 * 8 * 2];
  RawNifti r;

  for (gsize v = 0; v < sizeof data; v++)
    data[v] = (guint8) (v * 7);

  /* truncated data, plain and compressed: the header promises 1024 bytes, 600 are there */
  raw_defaults (&r, DT_INT16, 8, 8, 8);
  {
    g_autofree char *path = raw_write (dir, "cut.nii", &r, data, 600);
    assert_load_fails (path, CS_IO_ERROR_TRUNCATED, "truncated");
  }
  r.gz = TRUE;
  {
    g_autofree char *path = raw_write (dir, "cut.nii.gz", &r, data, 600);
    assert_load_fails (path, CS_IO_ERROR_TRUNCATED, "truncated");
  }
  /* a complete .nii.gz whose compressed stream is cut in half */
  {
    g_autofree char *path = raw_write (dir, "cutgz.nii.gz", &r, data, sizeof data);
    GStatBuf st;
    g_assert_cmpint (g_stat (path, &st), ==, 0);
    g_assert_cmpint (truncate (path, st.st_size / 2), ==, 0);
    assert_load_fails (path, CS_IO_ERROR_TRUNCATED, NULL);
  }
  /* a header cut short */
  r.gz = FALSE;
  {
    g_autofree char *full = raw_write (dir, "hdr.nii", &r, data, sizeof data);
    g_assert_cmpint (truncate (full, 200), ==, 0);
    assert_load_fails (full, CS_IO_ERROR_TRUNCATED, "header");
  }
  /* empty, not NIfTI, corrupt gzip, missing, wrong name */
  {
    g_autofree char *path = g_build_filename (dir, "empty.nii", NULL);
    g_assert_true (g_file_set_contents (path, "", 0, NULL));
    assert_load_fails (path, CS_IO_ERROR_TRUNCATED, NULL);
  }
  {
    g_autofree char *path = g_build_filename (dir, "text.nii", NULL);
    g_autofree char *junk = g_strnfill (1000, 'x');
    g_assert_true (g_file_set_contents (path, junk, -1, NULL));
    assert_load_fails (path, CS_IO_ERROR_FORMAT, "not a NIfTI");
  }
  {
    /* a valid gzip member header followed by garbage deflate data */
    static const guint8 bad_gz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff,
                                     0xff, 0xfe, 0x12, 0x34, 0x56, 0x78, 0x9a };
    g_autofree char *path = g_build_filename (dir, "corrupt.nii.gz", NULL);
    g_assert_true (g_file_set_contents (path, (const char *) bad_gz, sizeof bad_gz, NULL));
    assert_load_fails (path, CS_IO_ERROR_FORMAT, "corrupt");
  }
  {
    g_autofree char *path = g_build_filename (dir, "missing.nii.gz", NULL);
    assert_load_fails (path, CS_IO_ERROR_OPEN, "No such file");
  }
  {
    g_autofree char *path = g_build_filename (dir, "image.img", NULL);
    g_assert_true (g_file_set_contents (path, "x", 1, NULL));
    assert_load_fails (path, CS_IO_ERROR_FORMAT, "NIfTI file name");
  }
  cs_test_remove_tree (dir);
}

static void
test_bad_values (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-volume-XXXXXX");
  RawNifti r;

  /* three NaN voxels in an image */
  {
    float f[27] = { 0 };
    f[5] = NAN;
    f[6] = NAN;
    f[26] = NAN;
    raw_defaults (&r, DT_FLOAT32, 3, 3, 3);
    g_autofree char *path = raw_write (dir, "nan.nii.gz", &r, f, sizeof f);
    assert_load_fails (path, CS_IO_ERROR_VALUES, "3 voxels are NaN or infinite");
  }
  /* an infinite voxel in a float64 mask */
  {
    double d[8] = { 0, 1, 1, 0, 0, INFINITY, 0, 0 };
    raw_defaults (&r, DT_FLOAT64, 2, 2, 2);
    g_autofree char *path = raw_write (dir, "mask_seg.nii", &r, d, sizeof d);
    assert_load_fails (path, CS_IO_ERROR_VALUES, "1 voxel is NaN or infinite");
  }
  /* finite raw values that scaling makes infinite */
  {
    gint16 s[8] = { 1, 2, 3, 30000, 5, 6, 7, 8 };
    raw_defaults (&r, DT_INT16, 2, 2, 2);
    r.slope = 1e38;
    g_autofree char *path = raw_write (dir, "scaled.nii", &r, s, sizeof s);
    assert_load_fails (path, CS_IO_ERROR_VALUES, "voxel 1, 1, 0");
  }
  cs_test_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/volume/sagittal/orientations", test_sagittal_orientations);
  g_test_add_func ("/volume/axcodes/oblique", test_axcodes_oblique);
  g_test_add_func ("/volume/read/datatypes-scaling-versions", test_read_datatypes_and_scaling);
  g_test_add_func ("/volume/read/qform-and-fallback", test_read_qform_and_fallback);
  g_test_add_func ("/volume/read/4d-and-2d", test_read_4d_and_2d);
  g_test_add_func ("/volume/save/roundtrip", test_save_roundtrip);
  g_test_add_func ("/volume/save/refuses", test_save_refuses);
  g_test_add_func ("/volume/bad/headers", test_bad_headers);
  g_test_add_func ("/volume/bad/files", test_bad_files);
  g_test_add_func ("/volume/bad/values", test_bad_values);
  return g_test_run ();
}
