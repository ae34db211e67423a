/* cs-safetensors.c: safetensors (F32) writer and validating reader. */
#include "cs-safetensors.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* A header larger than this is not a weight file but a corrupt or hostile one. */
#define MAX_HEADER_BYTES (64u << 20)

struct _CsSafetensors
{
  char *path;
  guint8 *contents;          /* whole file; tensor data are read from it in place */
  gsize length;
  guint n_tensors;
  CsTensorSpec *specs;       /* file (offset) order; names owned by names[] */
  char **names;
  const float **data;        /* pointers into aligned copies (see below) */
  float *aligned;            /* all tensor data, 4-byte aligned, in file order */
  GHashTable *index;         /* name -> GUINT_TO_POINTER (i + 1) */
  GHashTable *metadata;      /* key -> value */
};

gsize
cs_tensor_spec_n_elements (const CsTensorSpec *spec)
{
  gsize n = 1;
  for (guint d = 0; d < spec->n_dims; d++)
    n *= (gsize) spec->shape[d];
  return n;
}

static char *
shape_to_string (const CsTensorSpec *spec)
{
  GString *s = g_string_new ("[");
  for (guint d = 0; d < spec->n_dims; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? ", " : "", spec->shape[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static gboolean
specs_equal_shape (const CsTensorSpec *a, const CsTensorSpec *b)
{
  if (a->n_dims != b->n_dims)
    return FALSE;
  for (guint d = 0; d < a->n_dims; d++)
    if (a->shape[d] != b->shape[d])
      return FALSE;
  return TRUE;
}

/* ---------------------------------------------------------------------------------- */
/* Writing                                                                             */

gboolean
cs_safetensors_write (const char *path, const CsTensorSpec *specs, guint n_tensors,
                      const float *flat_data, const char *const *metadata, GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (n_tensors == 0 || (specs != NULL && flat_data != NULL), FALSE);

  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  gsize offset = 0;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint t = 0; t < n_tensors; t++)
    {
      const CsTensorSpec *spec = &specs[t];
      gsize n = cs_tensor_spec_n_elements (spec);
      if (spec->name == NULL || spec->name[0] == '\0'
          || strcmp (spec->name, "__metadata__") == 0
          || !g_hash_table_add (seen, (gpointer) spec->name))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: tensor %u has an empty, reserved or repeated name '%s'",
                       path, t, spec->name ? spec->name : "(null)");
          return FALSE;
        }
      for (gsize i = 0; i < n; i++)
        if (!isfinite (flat_data[offset / 4 + i]))
          {
            g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                         "%s: tensor %s: value %" G_GSIZE_FORMAT " is %g; not written",
                         path, spec->name, i, (double) flat_data[offset / 4 + i]);
            return FALSE;
          }
      json_builder_set_member_name (builder, spec->name);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "dtype");
      json_builder_add_string_value (builder, "F32");
      json_builder_set_member_name (builder, "shape");
      json_builder_begin_array (builder);
      for (guint d = 0; d < spec->n_dims; d++)
        json_builder_add_int_value (builder, spec->shape[d]);
      json_builder_end_array (builder);
      json_builder_set_member_name (builder, "data_offsets");
      json_builder_begin_array (builder);
      json_builder_add_int_value (builder, (gint64) offset);
      json_builder_add_int_value (builder, (gint64) (offset + 4 * n));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      offset += 4 * n;
    }
  if (metadata != NULL && metadata[0] != NULL)
    {
      json_builder_set_member_name (builder, "__metadata__");
      json_builder_begin_object (builder);
      for (guint i = 0; metadata[i] != NULL; i += 2)
        {
          g_return_val_if_fail (metadata[i + 1] != NULL, FALSE);
          json_builder_set_member_name (builder, metadata[i]);
          json_builder_add_string_value (builder, metadata[i + 1]);
        }
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);

  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  gsize header_len = 0;
  g_autofree char *header = json_generator_to_data (generator, &header_len);
  gsize padded = (header_len + 7) & ~(gsize) 7;

  gsize total = 8 + padded + offset;
  g_autofree guint8 *buffer = g_malloc (total);
  guint64 n_le = GUINT64_TO_LE ((guint64) padded);
  memcpy (buffer, &n_le, 8);
  memcpy (buffer + 8, header, header_len);
  memset (buffer + 8 + header_len, ' ', padded - header_len);
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  if (offset > 0)
    memcpy (buffer + 8 + padded, flat_data, offset);
#else
  for (gsize i = 0; i < offset / 4; i++)
    {
      guint32 bits;
      memcpy (&bits, &flat_data[i], 4);
      bits = GUINT32_TO_LE (bits);
      memcpy (buffer + 8 + padded + 4 * i, &bits, 4);
    }
#endif
  /* Temp file + fsync + rename: a crash never leaves a half-written model behind. */
  g_autoptr (GError) local = NULL;
  if (!g_file_set_contents_full (path, (const char *) buffer, (gssize) total,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot write: %s", path,
                   local->message);
      return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------------------------- */
/* Reading                                                                             */

void
cs_safetensors_free (CsSafetensors *file)
{
  if (file == NULL)
    return;
  g_free (file->path);
  g_free (file->contents);
  g_free (file->specs);
  g_strfreev (file->names);
  g_free (file->data);
  g_free (file->aligned);
  g_clear_pointer (&file->index, g_hash_table_unref);
  g_clear_pointer (&file->metadata, g_hash_table_unref);
  g_free (file);
}

typedef struct
{
  guint index;
  gint64 begin, end;
} TensorRange;

static int
compare_ranges (gconstpointer a, gconstpointer b)
{
  const TensorRange *ra = a, *rb = b;
  return (ra->begin > rb->begin) - (ra->begin < rb->begin);
}

/* A JSON integer >= 0, as json-glib parses it (doubles and strings are refused). */
static gboolean
json_node_get_count (JsonNode *node, gint64 *out)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (node);
  return *out >= 0;
}

static gboolean
parse_metadata (CsSafetensors *file, JsonNode *node, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: __metadata__ is not a JSON object", file->path);
      return FALSE;
    }
  JsonObject *obj = json_node_get_object (node);
  g_autoptr (GList) members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next)
    {
      JsonNode *value = json_object_get_member (obj, l->data);
      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: __metadata__ value '%s' is not a string", file->path,
                       (const char *) l->data);
          return FALSE;
        }
      g_hash_table_insert (file->metadata, g_strdup (l->data),
                           g_strdup (json_node_get_string (value)));
    }
  return TRUE;
}

/* Parses one tensor entry of the header into spec and range. */
static gboolean
parse_tensor_entry (CsSafetensors *file, const char *name, JsonNode *node, CsTensorSpec *spec,
                    TensorRange *range, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: tensor %s: header entry is not a JSON object", file->path, name);
      return FALSE;
    }
  JsonObject *obj = json_node_get_object (node);
  JsonNode *dtype = json_object_get_member (obj, "dtype");
  JsonNode *shape = json_object_get_member (obj, "shape");
  JsonNode *offsets = json_object_get_member (obj, "data_offsets");
  if (dtype == NULL || !JSON_NODE_HOLDS_VALUE (dtype)
      || json_node_get_value_type (dtype) != G_TYPE_STRING
      || shape == NULL || !JSON_NODE_HOLDS_ARRAY (shape)
      || offsets == NULL || !JSON_NODE_HOLDS_ARRAY (offsets))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: tensor %s: header entry lacks dtype, shape or data_offsets",
                   file->path, name);
      return FALSE;
    }
  if (strcmp (json_node_get_string (dtype), "F32") != 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_DATATYPE,
                   "%s: tensor %s: dtype %s is not supported (only F32)", file->path, name,
                   json_node_get_string (dtype));
      return FALSE;
    }
  JsonArray *dims = json_node_get_array (shape);
  guint n_dims = json_array_get_length (dims);
  if (n_dims > CS_SAFETENSORS_MAX_DIMS)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: tensor %s: %u dimensions, at most %d supported", file->path, name,
                   n_dims, CS_SAFETENSORS_MAX_DIMS);
      return FALSE;
    }
  spec->name = name;
  spec->n_dims = n_dims;
  guint64 n_elements = 1;
  for (guint d = 0; d < n_dims; d++)
    {
      if (!json_node_get_count (json_array_get_element (dims, d), &spec->shape[d])
          || spec->shape[d] > (gint64) G_MAXUINT32)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: tensor %s: shape entry %u is not a valid size", file->path, name, d);
          return FALSE;
        }
      n_elements *= (guint64) spec->shape[d];
      if (n_elements > G_MAXUINT32)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: tensor %s: shape too large", file->path, name);
          return FALSE;
        }
    }
  JsonArray *off = json_node_get_array (offsets);
  if (json_array_get_length (off) != 2
      || !json_node_get_count (json_array_get_element (off, 0), &range->begin)
      || !json_node_get_count (json_array_get_element (off, 1), &range->end)
      || range->end < range->begin)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: tensor %s: data_offsets is not [begin, end] with begin <= end",
                   file->path, name);
      return FALSE;
    }
  if ((guint64) (range->end - range->begin) != 4 * n_elements)
    {
      g_autofree char *shape_str = shape_to_string (spec);
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: tensor %s: data_offsets span %" G_GINT64_FORMAT " bytes, shape %s "
                   "needs %" G_GUINT64_FORMAT, file->path, name, range->end - range->begin,
                   shape_str, 4 * n_elements);
      return FALSE;
    }
  return TRUE;
}

/* Checks the file's tensor table against the expected one: no tensor missing or extra,
 * every shape the expected one. */
static gboolean
check_expected (CsSafetensors *file, const CsTensorSpec *expected, guint n_expected,
                GError **error)
{
  for (guint e = 0; e < n_expected; e++)
    {
      gpointer hit = g_hash_table_lookup (file->index, expected[e].name);
      if (hit == NULL)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                       "%s: tensor %s is missing", file->path, expected[e].name);
          return FALSE;
        }
      const CsTensorSpec *got = &file->specs[GPOINTER_TO_UINT (hit) - 1];
      if (!specs_equal_shape (got, &expected[e]))
        {
          g_autofree char *want = shape_to_string (&expected[e]);
          g_autofree char *have = shape_to_string (got);
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                       "%s: tensor %s has shape %s, expected %s", file->path,
                       expected[e].name, have, want);
          return FALSE;
        }
    }
  if (file->n_tensors != n_expected)
    {
      g_autoptr (GHashTable) wanted = g_hash_table_new (g_str_hash, g_str_equal);
      for (guint e = 0; e < n_expected; e++)
        g_hash_table_add (wanted, (gpointer) expected[e].name);
      for (guint t = 0; t < file->n_tensors; t++)
        if (!g_hash_table_contains (wanted, file->names[t]))
          {
            g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                         "%s: tensor %s is not part of this model", file->path,
                         file->names[t]);
            return FALSE;
          }
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                   "%s: %u tensors, expected %u (repeated names?)", file->path,
                   file->n_tensors, n_expected);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_format (CsSafetensors *file, const char *expected_format, GError **error)
{
  const char *format = g_hash_table_lookup (file->metadata, "format");
  const char *version = g_hash_table_lookup (file->metadata, "version");
  if (format == NULL || strcmp (format, expected_format) != 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VERSION,
                   "%s: format '%s' is not '%s'", file->path, format ? format : "(none)",
                   expected_format);
      return FALSE;
    }
  if (version == NULL || strcmp (version, CS_SAFETENSORS_VERSION) != 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VERSION,
                   "%s: %s version '%s' is unknown (this build reads version %s)",
                   file->path, format, version ? version : "(none)", CS_SAFETENSORS_VERSION);
      return FALSE;
    }
  return TRUE;
}

CsSafetensors *
cs_safetensors_read (const char *path, const char *expected_format,
                     const CsTensorSpec *expected, guint n_expected, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  g_autoptr (CsSafetensors) file = g_new0 (CsSafetensors, 1);
  file->path = g_strdup (path);
  file->index = g_hash_table_new (g_str_hash, g_str_equal);
  file->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, (char **) &file->contents, &file->length, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot read: %s", path,
                   local->message);
      return NULL;
    }
  if (file->length < 8)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_TRUNCATED,
                   "%s: truncated: %" G_GSIZE_FORMAT " bytes, no header length", path,
                   file->length);
      return NULL;
    }
  guint64 header_len;
  memcpy (&header_len, file->contents, 8);
  header_len = GUINT64_FROM_LE (header_len);
  if (header_len > file->length - 8)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_TRUNCATED,
                   "%s: header length %" G_GUINT64_FORMAT " is beyond the end of the file "
                   "(%" G_GSIZE_FORMAT " bytes): truncated or not safetensors", path,
                   header_len, file->length);
      return NULL;
    }
  if (header_len < 2 || header_len > MAX_HEADER_BYTES)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: header length %" G_GUINT64_FORMAT " is not plausible", path,
                   header_len);
      return NULL;
    }

  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, (const char *) file->contents + 8,
                                   (gssize) header_len, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT, "%s: header is not valid JSON: %s",
                   path, local->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: header is not a JSON object", path);
      return NULL;
    }
  JsonObject *header = json_node_get_object (root);
  g_autoptr (GList) members = json_object_get_members (header);
  guint n_members = g_list_length (members);

  file->specs = g_new0 (CsTensorSpec, n_members);
  file->names = g_new0 (char *, n_members + 1);
  g_autofree TensorRange *ranges = g_new0 (TensorRange, n_members);
  g_autofree CsTensorSpec *header_specs = g_new0 (CsTensorSpec, n_members);
  g_autofree char **header_names = g_new0 (char *, n_members);
  guint n = 0;
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (header, name);
      if (strcmp (name, "__metadata__") == 0)
        {
          if (!parse_metadata (file, node, error))
            return NULL;
          continue;
        }
      if (!parse_tensor_entry (file, name, node, &header_specs[n], &ranges[n], error))
        return NULL;
      header_names[n] = (char *) name;
      ranges[n].index = n;
      n++;
    }

  /* Offsets: inside the data area and not overlapping one another. */
  gint64 data_bytes = (gint64) (file->length - 8 - header_len);
  qsort (ranges, n, sizeof *ranges, compare_ranges);
  for (guint r = 0; r < n; r++)
    {
      const char *name = header_names[ranges[r].index];
      if (ranges[r].end > data_bytes)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_TRUNCATED,
                       "%s: tensor %s: data [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ") "
                       "beyond the end of the data (%" G_GINT64_FORMAT " bytes): truncated",
                       path, name, ranges[r].begin, ranges[r].end, data_bytes);
          return NULL;
        }
      if (r > 0 && ranges[r].begin < ranges[r - 1].end)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: tensor %s: data overlaps tensor %s", path, name,
                       header_names[ranges[r - 1].index]);
          return NULL;
        }
    }

  /* Copy out in file order into one aligned buffer, refusing NaN and Inf. */
  gsize total = 0;
  for (guint r = 0; r < n; r++)
    total += (gsize) (ranges[r].end - ranges[r].begin) / 4;
  file->aligned = g_new (float, MAX (total, 1));
  file->data = g_new0 (const float *, MAX (n, 1));
  const guint8 *body = file->contents + 8 + header_len;
  gsize at = 0;
  for (guint r = 0; r < n; r++)
    {
      guint h = ranges[r].index;
      gsize count = (gsize) (ranges[r].end - ranges[r].begin) / 4;
      float *dest = file->aligned + at;
      for (gsize i = 0; i < count; i++)
        {
          guint32 bits;
          memcpy (&bits, body + ranges[r].begin + 4 * i, 4);
          bits = GUINT32_FROM_LE (bits);
          memcpy (&dest[i], &bits, 4);
          if (!isfinite (dest[i]))
            {
              g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                           "%s: tensor %s: value %" G_GSIZE_FORMAT " is %s", path,
                           header_names[h], i, isnan (dest[i]) ? "NaN" : "infinite");
              return NULL;
            }
        }
      file->names[r] = g_strdup (header_names[h]);
      file->specs[r] = header_specs[h];
      file->specs[r].name = file->names[r];
      file->data[r] = dest;
      g_hash_table_insert (file->index, file->names[r], GUINT_TO_POINTER (r + 1));
      at += count;
    }
  file->n_tensors = n;
  /* The raw bytes are no longer needed once copied. */
  g_clear_pointer (&file->contents, g_free);

  if (expected_format != NULL && !check_format (file, expected_format, error))
    return NULL;
  if (expected != NULL && !check_expected (file, expected, n_expected, error))
    return NULL;
  return g_steal_pointer (&file);
}

const char *
cs_safetensors_path (const CsSafetensors *file)
{
  return file->path;
}

guint
cs_safetensors_n_tensors (const CsSafetensors *file)
{
  return file->n_tensors;
}

const char *
cs_safetensors_name (const CsSafetensors *file, guint index)
{
  g_return_val_if_fail (index < file->n_tensors, NULL);
  return file->names[index];
}

const float *
cs_safetensors_lookup (const CsSafetensors *file, const char *name, CsTensorSpec *spec_out)
{
  gpointer hit = g_hash_table_lookup (file->index, name);
  if (hit == NULL)
    return NULL;
  guint i = GPOINTER_TO_UINT (hit) - 1;
  if (spec_out != NULL)
    *spec_out = file->specs[i];
  return file->data[i];
}

const char *
cs_safetensors_metadata (const CsSafetensors *file, const char *key)
{
  return g_hash_table_lookup (file->metadata, key);
}

gboolean
cs_safetensors_copy_flat (const CsSafetensors *file, const CsTensorSpec *specs,
                          guint n_tensors, float *flat_data, GError **error)
{
  gsize at = 0;
  for (guint t = 0; t < n_tensors; t++)
    {
      CsTensorSpec got;
      const float *data = cs_safetensors_lookup (file, specs[t].name, &got);
      if (data == NULL || !specs_equal_shape (&got, &specs[t]))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_HEADER,
                       "%s: tensor %s is %s", file->path, specs[t].name,
                       data == NULL ? "missing" : "of another shape");
          return FALSE;
        }
      gsize count = cs_tensor_spec_n_elements (&specs[t]);
      memcpy (flat_data + at, data, count * sizeof (float));
      at += count;
    }
  return TRUE;
}
