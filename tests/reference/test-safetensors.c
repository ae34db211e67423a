/* test-safetensors: our safetensors writer and the loader's refusals, one test each, on
 * files crafted at test time. */
#include "io/cs-safetensors.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static const CsTensorSpec two_specs[] = {
  { "cls_token", 3, { 1, 1, 4 } },
  { "patch_embed.weight", 2, { 4, 3 } },
};

typedef struct
{
  char *dir;
  char *path;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("cs-safetensors-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->path = g_build_filename (f->dir, "model.safetensors", NULL);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *p = g_build_filename (f->dir, name, NULL);
      g_unlink (p);
    }
  g_rmdir (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

/* Values 0.5*i - 3 (exact in float32): easy to check bit for bit. */
static void
fill_values (float *values, gsize n)
{
  for (gsize i = 0; i < n; i++)
    values[i] = 0.5f * (float) i - 3.0f;
}

/* A file made of an 8-byte length (claimed_len, or the header's own when 0), the header
 * text as given and data bytes of the two tensors above (16 floats = 64 bytes). */
static void
craft_file (const char *path, const char *header, guint64 claimed_len, gsize data_bytes,
            float poison, gsize poison_at)
{
  gsize hlen = strlen (header);
  guint64 len_le = GUINT64_TO_LE (claimed_len ? claimed_len : hlen);
  float data[16];
  fill_values (data, 16);
  if (poison_at < 16)
    data[poison_at] = poison;
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  g_byte_array_append (bytes, (const guint8 *) &len_le, 8);
  g_byte_array_append (bytes, (const guint8 *) header, (guint) hlen);
  g_byte_array_append (bytes, (const guint8 *) data, (guint) MIN (data_bytes, sizeof data));
  g_assert_true (g_file_set_contents (path, (const char *) bytes->data, bytes->len, NULL));
}

#define GOOD_META "\"__metadata__\":{\"format\":\"cordscope-u2ad\",\"version\":\"1\"}"
#define CLS(o0, o1) \
  "\"cls_token\":{\"dtype\":\"F32\",\"shape\":[1,1,4],\"data_offsets\":[" #o0 "," #o1 "]}"
#define PEW(o0, o1) \
  "\"patch_embed.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[" #o0 "," #o1 \
  "]}"
#define GOOD_HEADER "{" CLS (0, 16) "," PEW (16, 64) "," GOOD_META "}"

/* Reads path expecting the model format and the two tensors; asserts the error code and
 * that the message names the file and every string in must_name. */
static void
assert_refused (const char *path, int code, const char *must_name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSafetensors) file = cs_safetensors_read (path, CS_SAFETENSORS_FORMAT_MODEL,
                                                        two_specs, G_N_ELEMENTS (two_specs),
                                                        &error);
  g_assert_null (file);
  g_assert_error (error, CS_IO_ERROR, code);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, path));
  if (must_name != NULL)
    g_assert_nonnull (strstr (error->message, must_name));
}

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  float values[16];
  fill_values (values, 16);
  const char *meta[] = { "format", CS_SAFETENSORS_FORMAT_MODEL, "version", "1",
                         "config", "{\"img_size\": 32}", NULL };
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_safetensors_write (f->path, two_specs, 2, values, meta, &error));
  g_assert_no_error (error);

  /* Header padded with spaces to a multiple of 8; data straight after it. */
  g_autofree char *raw = NULL;
  gsize raw_len;
  g_assert_true (g_file_get_contents (f->path, &raw, &raw_len, NULL));
  guint64 hlen;
  memcpy (&hlen, raw, 8);
  hlen = GUINT64_FROM_LE (hlen);
  g_assert_cmpuint (hlen % 8, ==, 0);
  g_assert_cmpuint (raw_len, ==, 8 + hlen + 64);
  g_assert_cmpint (memcmp (raw + 8 + hlen, values, 64), ==, 0);

  g_autoptr (CsSafetensors) file = cs_safetensors_read (f->path, CS_SAFETENSORS_FORMAT_MODEL,
                                                        two_specs, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cs_safetensors_n_tensors (file), ==, 2);
  g_assert_cmpstr (cs_safetensors_name (file, 0), ==, "cls_token");
  g_assert_cmpstr (cs_safetensors_name (file, 1), ==, "patch_embed.weight");
  g_assert_cmpstr (cs_safetensors_metadata (file, "config"), ==, "{\"img_size\": 32}");
  g_assert_null (cs_safetensors_metadata (file, "epochs"));
  CsTensorSpec spec;
  const float *w = cs_safetensors_lookup (file, "patch_embed.weight", &spec);
  g_assert_nonnull (w);
  g_assert_cmpuint (spec.n_dims, ==, 2);
  g_assert_cmpint (spec.shape[0], ==, 4);
  g_assert_cmpint (spec.shape[1], ==, 3);
  g_assert_cmpmem (w, 48, values + 4, 48);
  float back[16] = { 0 };
  g_assert_true (cs_safetensors_copy_flat (file, two_specs, 2, back, &error));
  g_assert_cmpmem (back, sizeof back, values, sizeof values);

  /* Atomic write leaves no temp file beside the model. */
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  guint n_files = 0;
  while (g_dir_read_name (dir) != NULL)
    n_files++;
  g_assert_cmpuint (n_files, ==, 1);
}

static void
test_write_refuses_nan (Fixture *f, gconstpointer data)
{
  float values[16];
  fill_values (values, 16);
  values[7] = NAN;
  g_autoptr (GError) error = NULL;
  g_assert_false (cs_safetensors_write (f->path, two_specs, 2, values, NULL, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
  g_assert_nonnull (strstr (error->message, "patch_embed.weight"));
  g_assert_false (g_file_test (f->path, G_FILE_TEST_EXISTS));
}

static void
test_crafted_good (Fixture *f, gconstpointer data)
{
  /* The crafting helper itself makes a readable file: the refusals below differ from it
   * in the one thing they test. */
  craft_file (f->path, GOOD_HEADER, 0, 64, 0, 99);
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSafetensors) file = cs_safetensors_read (f->path, CS_SAFETENSORS_FORMAT_MODEL,
                                                        two_specs, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (cs_safetensors_lookup (file, "cls_token", NULL)[3], ==, -1.5f);
}

static void
test_refuse_short_file (Fixture *f, gconstpointer data)
{
  g_assert_true (g_file_set_contents (f->path, "\x10\0\0", 3, NULL));
  assert_refused (f->path, CS_IO_ERROR_TRUNCATED, NULL);
}

static void
test_refuse_truncated_data (Fixture *f, gconstpointer data)
{
  craft_file (f->path, GOOD_HEADER, 0, 60, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_TRUNCATED, "patch_embed.weight");
}

static void
test_refuse_header_beyond_file (Fixture *f, gconstpointer data)
{
  craft_file (f->path, GOOD_HEADER, 1u << 20, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_TRUNCATED, "header length");
}

static void
test_refuse_bad_json (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (0, 16) "," PEW (16, 64) ",", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_FORMAT, "JSON");
}

static void
test_refuse_wrong_dtype (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (0, 16) ",\"patch_embed.weight\":{\"dtype\":\"F16\",\"shape\":"
              "[4,3],\"data_offsets\":[16,40]}," GOOD_META "}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_DATATYPE, "patch_embed.weight");
}

static void
test_refuse_offsets_out_of_range (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (48, 64) "," PEW (64, 112) "," GOOD_META "}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_TRUNCATED, "patch_embed.weight");
}

static void
test_refuse_offsets_overlapping (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (0, 16) "," PEW (8, 56) "," GOOD_META "}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_FORMAT, "overlaps");
}

static void
test_refuse_offsets_not_shape (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (0, 16) "," PEW (16, 60) "," GOOD_META "}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_FORMAT, "patch_embed.weight");
}

static void
test_refuse_unknown_format (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (0, 16) "," PEW (16, 64) ",\"__metadata__\":{\"format\":"
              "\"pt\",\"version\":\"1\"}}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_VERSION, "format");
}

static void
test_refuse_unknown_version (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (0, 16) "," PEW (16, 64) ",\"__metadata__\":{\"format\":"
              "\"cordscope-u2ad\",\"version\":\"2\"}}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_VERSION, "version '2'");
}

static void
test_refuse_nan (Fixture *f, gconstpointer data)
{
  craft_file (f->path, GOOD_HEADER, 0, 64, NAN, 9);
  assert_refused (f->path, CS_IO_ERROR_VALUES, "patch_embed.weight");
}

static void
test_refuse_inf (Fixture *f, gconstpointer data)
{
  craft_file (f->path, GOOD_HEADER, 0, 64, -INFINITY, 2);
  assert_refused (f->path, CS_IO_ERROR_VALUES, "cls_token");
}

static void
test_refuse_missing_tensor (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" PEW (16, 64) "," GOOD_META "}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_HEADER, "cls_token is missing");
}

static void
test_refuse_extra_tensor (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (0, 16) "," PEW (16, 64) ",\"pos_embed\":{\"dtype\":\"F32\","
              "\"shape\":[0],\"data_offsets\":[64,64]}," GOOD_META "}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_HEADER, "pos_embed");
}

static void
test_refuse_wrong_shape (Fixture *f, gconstpointer data)
{
  craft_file (f->path, "{" CLS (0, 16) ",\"patch_embed.weight\":{\"dtype\":\"F32\",\"shape\":"
              "[3,4],\"data_offsets\":[16,64]}," GOOD_META "}", 0, 64, 0, 99);
  assert_refused (f->path, CS_IO_ERROR_GEOMETRY, "patch_embed.weight has shape [3, 4]");
}

static void
test_refuse_missing_file (Fixture *f, gconstpointer data)
{
  assert_refused (f->path, CS_IO_ERROR_OPEN, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/safetensors/" name, Fixture, NULL, fixture_set_up, fn, \
                                  fixture_tear_down)
  ADD ("round-trip", test_round_trip);
  ADD ("write-refuses-nan", test_write_refuses_nan);
  ADD ("crafted-good", test_crafted_good);
  ADD ("refuse/short-file", test_refuse_short_file);
  ADD ("refuse/truncated-data", test_refuse_truncated_data);
  ADD ("refuse/header-beyond-file", test_refuse_header_beyond_file);
  ADD ("refuse/bad-json", test_refuse_bad_json);
  ADD ("refuse/wrong-dtype", test_refuse_wrong_dtype);
  ADD ("refuse/offsets-out-of-range", test_refuse_offsets_out_of_range);
  ADD ("refuse/offsets-overlapping", test_refuse_offsets_overlapping);
  ADD ("refuse/offsets-not-shape", test_refuse_offsets_not_shape);
  ADD ("refuse/unknown-format", test_refuse_unknown_format);
  ADD ("refuse/unknown-version", test_refuse_unknown_version);
  ADD ("refuse/nan", test_refuse_nan);
  ADD ("refuse/inf", test_refuse_inf);
  ADD ("refuse/missing-tensor", test_refuse_missing_tensor);
  ADD ("refuse/extra-tensor", test_refuse_extra_tensor);
  ADD ("refuse/wrong-shape", test_refuse_wrong_shape);
  ADD ("refuse/missing-file", test_refuse_missing_file);
  return g_test_run ();
}
