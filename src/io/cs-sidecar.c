/* cs-sidecar.c: NAME.cordscope.json, read with validation and written atomically. */
#include "io/cs-sidecar.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static const char *const label_names[] = { "unset", "normal", "hyperintense", "uncertain" };
static const char *const source_names[] = { "file", "manual", "derived" };
static const char *const review_names[] = { "unset", "pass", "fail" };

static gboolean
enum_from_string (const char *const *names, guint n, const char *text, int *value)
{
  for (guint i = 0; text != NULL && i < n; i++)
    if (strcmp (text, names[i]) == 0)
      {
        *value = (int) i;
        return TRUE;
      }
  return FALSE;
}

const char *
cs_segment_label_to_string (CsSegmentLabel label)
{
  g_return_val_if_fail ((guint) label < G_N_ELEMENTS (label_names), "unset");
  return label_names[label];
}

gboolean
cs_segment_label_from_string (const char *text, CsSegmentLabel *label)
{
  int value;
  if (!enum_from_string (label_names, G_N_ELEMENTS (label_names), text, &value))
    return FALSE;
  *label = (CsSegmentLabel) value;
  return TRUE;
}

const char *
cs_disc_source_to_string (CsDiscSource source)
{
  g_return_val_if_fail ((guint) source < G_N_ELEMENTS (source_names), "file");
  return source_names[source];
}

gboolean
cs_disc_source_from_string (const char *text, CsDiscSource *source)
{
  int value;
  if (!enum_from_string (source_names, G_N_ELEMENTS (source_names), text, &value))
    return FALSE;
  *source = (CsDiscSource) value;
  return TRUE;
}

char *
cs_sidecar_now (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format (now, "%Y-%m-%dT%H:%M:%SZ");
}

CsSidecar *
cs_sidecar_new (const char *case_name, const char *image_file, const char *annotator)
{
  CsSidecar *s = g_new0 (CsSidecar, 1);
  s->case_name = g_strdup (case_name ? case_name : "");
  s->image_file = g_strdup (image_file ? image_file : "");
  s->annotator = g_strdup (annotator ? annotator : "");
  s->created = cs_sidecar_now ();
  s->modified = g_strdup (s->created);
  s->discs = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  s->flag_reason = g_strdup ("");
  s->note = g_strdup ("");
  s->centerline = g_array_new (FALSE, TRUE, sizeof (CsCenterlinePoint));
  return s;
}

void
cs_sidecar_free (CsSidecar *s)
{
  if (s == NULL)
    return;
  g_free (s->case_name);
  g_free (s->image_file);
  g_free (s->annotator);
  g_free (s->created);
  g_free (s->modified);
  g_clear_pointer (&s->discs, g_array_unref);
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      g_free (s->segments[i].annotator);
      g_free (s->segments[i].time);
    }
  g_free (s->flag_reason);
  g_free (s->note);
  g_clear_pointer (&s->centerline, g_array_unref);
  g_free (s);
}

void
cs_sidecar_set_segment (CsSidecar *s, int segment, CsSegmentLabel label, const char *annotator)
{
  g_return_if_fail (segment >= 0 && segment < CS_N_SEGMENTS);
  CsSegmentAnnotation *a = &s->segments[segment];
  a->label = label;
  g_free (a->annotator);
  a->annotator = g_strdup (annotator);
  g_free (a->time);
  a->time = cs_sidecar_now ();
}

static gint
compare_discs (gconstpointer a, gconstpointer b)
{
  return ((const CsDisc *) a)->value - ((const CsDisc *) b)->value;
}

void
cs_sidecar_set_disc (CsSidecar *s, const CsDisc *disc)
{
  for (guint i = 0; i < s->discs->len; i++)
    if (g_array_index (s->discs, CsDisc, i).value == disc->value)
      {
        g_array_index (s->discs, CsDisc, i) = *disc;
        return;
      }
  g_array_append_val (s->discs, *disc);
  g_array_sort (s->discs, compare_discs);
}

/* ---- writing ---------------------------------------------------------------------- */

static void
add_string_or_null (JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name (b, key);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_point (JsonBuilder *b, const double p[3])
{
  json_builder_begin_array (b);
  for (int a = 0; a < 3; a++)
    json_builder_add_double_value (b, p[a]);
  json_builder_end_array (b);
}

char *
cs_sidecar_to_json (const CsSidecar *s)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "schema_version");
  json_builder_add_int_value (b, CS_SIDECAR_SCHEMA_VERSION);
  add_string_or_null (b, "case", s->case_name ? s->case_name : "");
  add_string_or_null (b, "image", s->image_file ? s->image_file : "");
  add_string_or_null (b, "annotator", s->annotator ? s->annotator : "");
  add_string_or_null (b, "created", s->created);
  add_string_or_null (b, "modified", s->modified);

  json_builder_set_member_name (b, "discs");
  json_builder_begin_array (b);
  for (guint i = 0; s->discs != NULL && i < s->discs->len; i++)
    {
      const CsDisc *d = &g_array_index (s->discs, CsDisc, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "value");
      json_builder_add_int_value (b, d->value);
      add_string_or_null (b, "name", cs_disc_name (d->value));
      json_builder_set_member_name (b, "voxel");
      add_point (b, d->voxel);
      add_string_or_null (b, "source", cs_disc_source_to_string (d->source));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "segments");
  json_builder_begin_object (b);
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      const CsSegmentAnnotation *a = &s->segments[i];
      json_builder_set_member_name (b, cs_segment_name (CS_SEGMENT_FIRST_DISC + i));
      json_builder_begin_object (b);
      add_string_or_null (b, "label", cs_segment_label_to_string (a->label));
      add_string_or_null (b, "annotator", a->annotator);
      add_string_or_null (b, "time", a->time);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);

  json_builder_set_member_name (b, "flags");
  json_builder_begin_object (b);
  add_string_or_null (b, "review", review_names[s->review]);
  json_builder_set_member_name (b, "artifact");
  json_builder_add_boolean_value (b, s->artifact);
  add_string_or_null (b, "reason", s->flag_reason ? s->flag_reason : "");
  json_builder_end_object (b);

  add_string_or_null (b, "note", s->note ? s->note : "");

  json_builder_set_member_name (b, "centerline");
  json_builder_begin_array (b);
  for (guint i = 0; s->centerline != NULL && i < s->centerline->len; i++)
    add_point (b, g_array_index (s->centerline, CsCenterlinePoint, i).voxel);
  json_builder_end_array (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  return g_strconcat (text, "\n", NULL);
}

/* Writes all of DATA to FD, retrying short writes and interrupts; sets errno on failure. */
static gboolean
write_all (int fd, const char *data, gsize length)
{
  while (length > 0)
    {
      gssize n = write (fd, data, length);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n == 0)
            errno = ENOSPC;
          return FALSE;
        }
      data += n;
      length -= n;
    }
  return TRUE;
}

static gboolean
fail_errno (GError **error, const char *path, const char *what, int saved_errno)
{
  g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: %s: %s", path, what,
               g_strerror (saved_errno));
  return FALSE;
}

/* PATH.bak := PATH, keeping PATH in place throughout (a hard link, else a copy where the
 * file system has no hard links: FAT, some network shares). */
static gboolean
keep_backup (const char *path, const char *bak, GError **error)
{
  if (g_unlink (bak) != 0 && errno != ENOENT)
    return fail_errno (error, bak, "cannot replace the backup of the annotations", errno);
  if (link (path, bak) == 0)
    return TRUE;
  g_autofree char *contents = NULL;
  gsize length = 0;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &contents, &length, &local)
      || !g_file_set_contents (bak, contents, length, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN,
                   "%s: cannot keep a backup of the annotations: %s", bak, local->message);
      return FALSE;
    }
  return TRUE;
}

gboolean
cs_sidecar_write_text (const char *path, const char *text, gboolean backup, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmp = g_strdup_printf ("%s%c.%s.XXXXXX", dir, G_DIR_SEPARATOR, base);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN,
                   "%s: cannot write the annotations: cannot create a file in %s: %s", path,
                   dir, g_strerror (saved));
      return FALSE;
    }
  if (!write_all (fd, text, strlen (text)) || fsync (fd) != 0)
    {
      int saved = errno;
      close (fd);
      g_unlink (tmp);
      return fail_errno (error, path, "cannot write the annotations (previous file kept)",
                         saved);
    }
  if (close (fd) != 0)
    {
      int saved = errno;
      g_unlink (tmp);
      return fail_errno (error, path, "cannot write the annotations (previous file kept)",
                         saved);
    }

  g_autofree char *bak = g_strconcat (path, ".bak", NULL);
  if (backup && g_file_test (path, G_FILE_TEST_EXISTS) && !keep_backup (path, bak, error))
    {
      g_unlink (tmp);
      return FALSE;
    }
  if (g_rename (tmp, path) != 0)
    {
      int saved = errno;
      g_unlink (tmp);
      return fail_errno (error, path, "cannot replace the annotations (previous file kept)",
                         saved);
    }
  /* The rename is durable only once the folder's entry is on disk. */
  int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0)
    {
      if (fsync (dir_fd) != 0 && errno != EINVAL)
        g_debug ("%s: cannot sync the folder: %s", dir, g_strerror (errno));
      close (dir_fd);
    }
  return TRUE;
}

gboolean
cs_sidecar_save (CsSidecar *s, const char *path, GError **error)
{
  g_return_val_if_fail (s != NULL && path != NULL, FALSE);
  g_free (s->modified);
  s->modified = cs_sidecar_now ();
  if (s->created == NULL)
    s->created = g_strdup (s->modified);
  g_autofree char *text = cs_sidecar_to_json (s);
  return cs_sidecar_write_text (path, text, TRUE, error);
}

/* ---- reading ---------------------------------------------------------------------- */

static gboolean
bad_field (GError **error, const char *source, const char *field, const char *problem)
{
  g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT, "%s: field \"%s\": %s", source, field,
               problem);
  return FALSE;
}

/* Optional string member: absent or null gives NULL when ALLOW_NULL, else DEFAULT_VALUE. */
static gboolean
read_string (JsonObject *obj, const char *key, const char *field, const char *source,
             gboolean allow_null, char **out, GError **error)
{
  JsonNode *node = json_object_get_member (obj, key);
  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      if (!allow_null && node != NULL)
        return bad_field (error, source, field, "must be a string, not null");
      *out = allow_null ? NULL : g_strdup ("");
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return bad_field (error, source, field, "must be a string");
  *out = g_strdup (json_node_get_string (node));
  return TRUE;
}

static gboolean
read_time (JsonObject *obj, const char *key, const char *field, const char *source,
           char **out, GError **error)
{
  if (!read_string (obj, key, field, source, TRUE, out, error))
    return FALSE;
  if (*out != NULL)
    {
      g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (*out, NULL);
      if (t == NULL)
        {
          g_clear_pointer (out, g_free);
          return bad_field (error, source, field,
                            "is not an ISO 8601 time (e.g. 2026-11-27T14:05:09Z)");
        }
    }
  return TRUE;
}

static gboolean
node_number (JsonNode *node, double *value)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  GType t = json_node_get_value_type (node);
  if (t == G_TYPE_INT64)
    *value = (double) json_node_get_int (node);
  else if (t == G_TYPE_DOUBLE)
    *value = json_node_get_double (node);
  else
    return FALSE;
  return isfinite (*value);
}

static gboolean
read_point (JsonNode *node, double p[3], const char *field, const char *source,
            GError **error)
{
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node)
      || json_array_get_length (json_node_get_array (node)) != 3)
    return bad_field (error, source, field, "must be an array of three numbers [i, j, k]");
  JsonArray *a = json_node_get_array (node);
  for (guint i = 0; i < 3; i++)
    if (!node_number (json_array_get_element (a, i), &p[i]))
      return bad_field (error, source, field, "must be an array of three finite numbers");
  return TRUE;
}

static JsonObject *
member_object (JsonObject *obj, const char *key, const char *field, const char *source,
               gboolean *ok, GError **error)
{
  JsonNode *node = json_object_get_member (obj, key);
  *ok = TRUE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      *ok = bad_field (error, source, field, "must be an object");
      return NULL;
    }
  return json_node_get_object (node);
}

static JsonArray *
member_array (JsonObject *obj, const char *key, const char *source, gboolean *ok,
              GError **error)
{
  JsonNode *node = json_object_get_member (obj, key);
  *ok = TRUE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      *ok = bad_field (error, source, key, "must be an array");
      return NULL;
    }
  return json_node_get_array (node);
}

static gboolean
read_discs (CsSidecar *s, JsonObject *root, const char *source, GError **error)
{
  gboolean ok;
  JsonArray *discs = member_array (root, "discs", source, &ok, error);
  for (guint i = 0; ok && discs != NULL && i < json_array_get_length (discs); i++)
    {
      g_autofree char *field = g_strdup_printf ("discs[%u]", i);
      JsonNode *node = json_array_get_element (discs, i);
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return bad_field (error, source, field, "must be an object");
      JsonObject *obj = json_node_get_object (node);
      CsDisc disc = { 0 };
      double value;
      g_autofree char *value_field = g_strconcat (field, ".value", NULL);
      if (!node_number (json_object_get_member (obj, "value"), &value) || value != floor (value)
          || value < 1 || value > 255)
        return bad_field (error, source, value_field, "must be a whole disc value in 1..255");
      disc.value = (int) value;
      g_autofree char *voxel_field = g_strconcat (field, ".voxel", NULL);
      if (!read_point (json_object_get_member (obj, "voxel"), disc.voxel, voxel_field, source,
                       error))
        return FALSE;
      g_autofree char *source_field = g_strconcat (field, ".source", NULL);
      g_autofree char *source_text = NULL;
      if (!read_string (obj, "source", source_field, source, FALSE, &source_text, error))
        return FALSE;
      if (*source_text != '\0' && !cs_disc_source_from_string (source_text, &disc.source))
        return bad_field (error, source, source_field,
                          "must be \"file\", \"manual\" or \"derived\"");
      for (guint j = 0; j < s->discs->len; j++)
        if (g_array_index (s->discs, CsDisc, j).value == disc.value)
          return bad_field (error, source, value_field, "the same disc value appears twice");
      g_array_append_val (s->discs, disc);
    }
  g_array_sort (s->discs, compare_discs);
  return ok;
}

static gboolean
read_segments (CsSidecar *s, JsonObject *root, const char *source, GError **error)
{
  gboolean ok;
  JsonObject *segments = member_object (root, "segments", "segments", source, &ok, error);
  if (!ok || segments == NULL)
    return ok;
  g_autoptr (GList) names = json_object_get_members (segments);
  for (GList *l = names; l != NULL; l = l->next)
    {
      const char *name = l->data;
      g_autofree char *field = g_strdup_printf ("segments.%s", name);
      int index = -1;
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        if (strcmp (name, cs_segment_name (CS_SEGMENT_FIRST_DISC + i)) == 0)
          index = i;
      if (index < 0)
        return bad_field (error, source, field,
                          "is not a segment (C2-3, C3-4, C4-5, C5-6, C6-7, C7-T1)");
      JsonObject *obj = member_object (segments, name, field, source, &ok, error);
      if (!ok)
        return FALSE;
      if (obj == NULL)
        continue;
      CsSegmentAnnotation *a = &s->segments[index];
      g_autofree char *label_field = g_strconcat (field, ".label", NULL);
      g_autofree char *label = NULL;
      if (!read_string (obj, "label", label_field, source, FALSE, &label, error))
        return FALSE;
      if (*label != '\0' && !cs_segment_label_from_string (label, &a->label))
        return bad_field (error, source, label_field,
                          "must be \"normal\", \"hyperintense\", \"uncertain\" or \"unset\"");
      g_autofree char *who_field = g_strconcat (field, ".annotator", NULL);
      g_autofree char *time_field = g_strconcat (field, ".time", NULL);
      if (!read_string (obj, "annotator", who_field, source, TRUE, &a->annotator, error)
          || !read_time (obj, "time", time_field, source, &a->time, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
read_flags (CsSidecar *s, JsonObject *root, const char *source, GError **error)
{
  gboolean ok;
  JsonObject *flags = member_object (root, "flags", "flags", source, &ok, error);
  if (!ok || flags == NULL)
    return ok;
  g_autofree char *review = NULL;
  int value;
  if (!read_string (flags, "review", "flags.review", source, FALSE, &review, error))
    return FALSE;
  if (*review != '\0')
    {
      if (!enum_from_string (review_names, G_N_ELEMENTS (review_names), review, &value))
        return bad_field (error, source, "flags.review", "must be \"pass\", \"fail\" or \"unset\"");
      s->review = (CsReview) value;
    }
  JsonNode *artifact = json_object_get_member (flags, "artifact");
  if (artifact != NULL && !JSON_NODE_HOLDS_NULL (artifact))
    {
      if (!JSON_NODE_HOLDS_VALUE (artifact)
          || json_node_get_value_type (artifact) != G_TYPE_BOOLEAN)
        return bad_field (error, source, "flags.artifact", "must be true or false");
      s->artifact = json_node_get_boolean (artifact);
    }
  g_free (s->flag_reason);
  return read_string (flags, "reason", "flags.reason", source, FALSE, &s->flag_reason, error);
}

static gboolean
read_centerline (CsSidecar *s, JsonObject *root, const char *source, GError **error)
{
  gboolean ok;
  JsonArray *points = member_array (root, "centerline", source, &ok, error);
  for (guint i = 0; ok && points != NULL && i < json_array_get_length (points); i++)
    {
      g_autofree char *field = g_strdup_printf ("centerline[%u]", i);
      CsCenterlinePoint p;
      if (!read_point (json_array_get_element (points, i), p.voxel, field, source, error))
        return FALSE;
      g_array_append_val (s->centerline, p);
    }
  return ok;
}

CsSidecar *
cs_sidecar_from_json (const char *data, gssize length, const char *source, GError **error)
{
  if (source == NULL)
    source = "annotations";
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  if (!json_parser_load_from_data (parser, data, length, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT, "%s: not valid JSON: %s", source,
                   local->message);
      return NULL;
    }
  JsonNode *root_node = json_parser_get_root (parser);
  if (root_node == NULL || !JSON_NODE_HOLDS_OBJECT (root_node))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: not a Cordscope annotation file (the top level is not a JSON object)",
                   source);
      return NULL;
    }
  JsonObject *root = json_node_get_object (root_node);
  double version;
  JsonNode *version_node = json_object_get_member (root, "schema_version");
  if (version_node == NULL)
    {
      bad_field (error, source, "schema_version", "missing: not a Cordscope annotation file");
      return NULL;
    }
  if (!node_number (version_node, &version) || version != floor (version))
    {
      bad_field (error, source, "schema_version", "must be a whole number");
      return NULL;
    }
  if (version != CS_SIDECAR_SCHEMA_VERSION)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VERSION,
                   "%s: annotation schema version %.0f is not supported (this Cordscope reads "
                   "version %d); a newer Cordscope may have written it", source, version,
                   CS_SIDECAR_SCHEMA_VERSION);
      return NULL;
    }

  g_autoptr (CsSidecar) s = cs_sidecar_new (NULL, NULL, NULL);
  g_clear_pointer (&s->case_name, g_free);
  g_clear_pointer (&s->image_file, g_free);
  g_clear_pointer (&s->annotator, g_free);
  g_clear_pointer (&s->created, g_free);
  g_clear_pointer (&s->modified, g_free);
  g_clear_pointer (&s->note, g_free);
  if (!read_string (root, "case", "case", source, FALSE, &s->case_name, error)
      || !read_string (root, "image", "image", source, FALSE, &s->image_file, error)
      || !read_string (root, "annotator", "annotator", source, FALSE, &s->annotator, error)
      || !read_time (root, "created", "created", source, &s->created, error)
      || !read_time (root, "modified", "modified", source, &s->modified, error)
      || !read_string (root, "note", "note", source, FALSE, &s->note, error)
      || !read_discs (s, root, source, error) || !read_segments (s, root, source, error)
      || !read_flags (s, root, source, error) || !read_centerline (s, root, source, error))
    return NULL;
  return g_steal_pointer (&s);
}

CsSidecar *
cs_sidecar_load (const char *path, GError **error)
{
  g_autofree char *contents = NULL;
  gsize length = 0;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &contents, &length, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s", local->message);
      return NULL;
    }
  return cs_sidecar_from_json (contents, (gssize) length, path, error);
}
