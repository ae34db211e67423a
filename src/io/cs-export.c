/* cs-export.c: dataset CSV (out and back in), SCT disc-label NIfTI, JSON dataset. */
#include "io/cs-export.h"

#include "io/cs-annotation.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define NIFTI_DT_UINT8 2   /* nifti1.h's DT_UINT8; the header is not needed for one number */
#define N_COLUMNS 10

static const char *const review_names[] = { "unset", "pass", "fail" };

CsExportCase *
cs_export_case_new_full (CsSidecar *sidecar, const double *scores)
{
  CsExportCase *c = g_new0 (CsExportCase, 1);
  c->sidecar = sidecar;
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    c->model_score[i] = scores ? scores[i] : NAN;
  return c;
}

CsExportCase *
cs_export_case_new (const char *case_name)
{
  return cs_export_case_new_full (cs_sidecar_new (case_name, NULL, NULL), NULL);
}

void
cs_export_case_free (CsExportCase *c)
{
  if (c == NULL)
    return;
  cs_sidecar_free (c->sidecar);
  g_clear_pointer (&c->discs, g_array_unref);
  g_free (c->discs_error);
  g_free (c);
}

GPtrArray *
cs_export_collect (GPtrArray *cases, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify)
                                                               cs_export_case_free);
  for (guint i = 0; i < cases->len; i++)
    {
      const CsCase *c = cases->pdata[i];
      g_autoptr (CsAnnotation) doc = cs_annotation_open_case (c, error);
      if (doc == NULL)
        return NULL;
      /* A copy, so the export owns its labels. */
      g_autofree char *text = cs_sidecar_to_json (cs_annotation_get_sidecar (doc));
      CsSidecar *s = cs_sidecar_from_json (text, -1, c->sidecar_target, error);
      if (s == NULL)
        return NULL;
      CsExportCase *ec = cs_export_case_new_full (s, NULL);
      g_ptr_array_add (out, ec);
      ec->centerline_width = cs_annotation_get_centerline_width (doc);
      g_autoptr (GError) local = NULL;
      ec->discs = cs_case_effective_discs (c, NULL, &local);
      if (ec->discs == NULL)
        ec->discs_error = g_strdup (local->message);
    }
  return g_steal_pointer (&out);
}

/* ---- CSV out ---------------------------------------------------------------------- */

static void
append_field (GString *out, const char *value, gboolean last)
{
  if (value == NULL)
    value = "";
  gsize n = strlen (value);
  gboolean quote = strpbrk (value, ",\"\r\n") != NULL
    || (n > 0 && (g_ascii_isspace (value[0]) || g_ascii_isspace (value[n - 1])));
  if (quote)
    {
      g_string_append_c (out, '"');
      for (const char *p = value; *p; p++)
        {
          if (*p == '"')
            g_string_append_c (out, '"');
          g_string_append_c (out, *p);
        }
      g_string_append_c (out, '"');
    }
  else
    g_string_append (out, value);
  g_string_append_c (out, last ? '\n' : ',');
}

char *
cs_export_csv_text (GPtrArray *cases)
{
  GString *out = g_string_new (CS_EXPORT_CSV_HEADER "\n");
  for (guint c = 0; c < cases->len; c++)
    {
      const CsExportCase *ec = cases->pdata[c];
      const CsSidecar *s = ec->sidecar;
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        {
          const CsSegmentAnnotation *a = &s->segments[i];
          char score[G_ASCII_DTOSTR_BUF_SIZE] = "";
          if (isfinite (ec->model_score[i]))
            g_ascii_dtostr (score, sizeof score, ec->model_score[i]);
          append_field (out, s->case_name, FALSE);
          append_field (out, cs_segment_name (CS_SEGMENT_FIRST_DISC + i), FALSE);
          append_field (out, cs_segment_label_to_string (a->label), FALSE);
          append_field (out, a->annotator, FALSE);
          append_field (out, a->time, FALSE);
          append_field (out, score, FALSE);
          append_field (out, review_names[s->review], FALSE);
          append_field (out, s->artifact ? "true" : "false", FALSE);
          append_field (out, s->flag_reason, FALSE);
          append_field (out, s->note, TRUE);
        }
    }
  return g_string_free (out, FALSE);
}

static gboolean
write_text (const char *path, const char *text, GError **error)
{
  g_autoptr (GError) local = NULL;
  if (!g_file_set_contents_full (path, text, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot write the export: %s",
                   path, local->message);
      return FALSE;
    }
  return TRUE;
}

gboolean
cs_export_csv (GPtrArray *cases, const char *path, GError **error)
{
  g_autofree char *text = cs_export_csv_text (cases);
  return write_text (path, text, error);
}

/* ---- CSV in ----------------------------------------------------------------------- */

typedef struct
{
  GPtrArray *fields;   /* char* */
  guint line;          /* where the record starts (1-based) */
} CsvRecord;

static void
csv_record_free (CsvRecord *r)
{
  g_ptr_array_unref (r->fields);
  g_free (r);
}

static gboolean
csv_error (GError **error, const char *source, guint line, const char *format, ...)
  G_GNUC_PRINTF (4, 5);

static gboolean
csv_error (GError **error, const char *source, guint line, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *what = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT, "%s:%u: %s", source, line, what);
  return FALSE;
}

/* Splits TEXT into records (RFC 4180, LF or CRLF), skipping empty lines. */
static GPtrArray *
csv_split (const char *text, gsize length, const char *source, GError **error)
{
  g_autoptr (GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify)
                                                                   csv_record_free);
  const char *p = text, *end = text + length;
  guint line = 1;
  if (length >= 3 && memcmp (p, "\xEF\xBB\xBF", 3) == 0)
    p += 3;   /* spreadsheets write a byte-order mark */
  while (p < end)
    {
      CsvRecord *r = g_new0 (CsvRecord, 1);
      r->fields = g_ptr_array_new_with_free_func (g_free);
      r->line = line;
      g_ptr_array_add (records, r);
      for (;;)
        {
          GString *field = g_string_new (NULL);
          if (p < end && *p == '"')
            {
              guint quote_line = line;
              p++;
              for (;;)
                {
                  if (p >= end)
                    {
                      g_string_free (field, TRUE);
                      csv_error (error, source, quote_line,
                                 "a quoted field is not closed (a \" is missing)");
                      return NULL;
                    }
                  if (*p == '"' && p + 1 < end && p[1] == '"')
                    {
                      g_string_append_c (field, '"');
                      p += 2;
                    }
                  else if (*p == '"')
                    {
                      p++;
                      break;
                    }
                  else
                    {
                      if (*p == '\n')
                        line++;
                      g_string_append_c (field, *p++);
                    }
                }
              if (p < end && *p != ',' && *p != '\n' && !(*p == '\r' && p + 1 < end
                                                           && p[1] == '\n'))
                {
                  g_string_free (field, TRUE);
                  csv_error (error, source, line,
                             "text after a closing quote (write a quote in a field as \"\")");
                  return NULL;
                }
            }
          else
            {
              while (p < end && *p != ',' && *p != '\n'
                     && !(*p == '\r' && p + 1 < end && p[1] == '\n'))
                {
                  if (*p == '"')
                    {
                      g_string_free (field, TRUE);
                      csv_error (error, source, line,
                                 "a quote inside a field that does not start with one");
                      return NULL;
                    }
                  g_string_append_c (field, *p++);
                }
            }
          g_ptr_array_add (r->fields, g_string_free (field, FALSE));
          if (p < end && *p == ',')
            {
              p++;
              continue;
            }
          if (p < end && *p == '\r')
            p++;
          if (p < end && *p == '\n')
            {
              p++;
              line++;
            }
          break;
        }
      if (r->fields->len == 1 && *(char *) r->fields->pdata[0] == '\0')
        g_ptr_array_remove_index (records, records->len - 1);
    }
  return g_steal_pointer (&records);
}

static int
segment_index (const char *name)
{
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    if (strcmp (name, cs_segment_name (CS_SEGMENT_FIRST_DISC + i)) == 0)
      return i;
  return -1;
}

/* The row of the first sighting of a case, to compare its case fields with later rows. */
typedef struct
{
  CsExportCase *ec;
  guint first_line;
  guint seen;   /* bit i: segment i listed */
} CaseEntry;

GPtrArray *
cs_import_csv_text (const char *text, gssize length, const char *source, GError **error)
{
  if (source == NULL)
    source = "CSV";
  if (length < 0)
    length = (gssize) strlen (text);
  if (!g_utf8_validate (text, length, NULL))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT, "%s: not UTF-8 text", source);
      return NULL;
    }
  g_autoptr (GPtrArray) records = csv_split (text, (gsize) length, source, error);
  if (records == NULL)
    return NULL;
  if (records->len == 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT, "%s: empty (no header line)",
                   source);
      return NULL;
    }
  CsvRecord *header = records->pdata[0];
  g_autofree char *header_text = NULL;
  {
    g_ptr_array_add (header->fields, NULL);
    header_text = g_strjoinv (",", (char **) header->fields->pdata);
    g_ptr_array_set_size (header->fields, header->fields->len - 1);
  }
  if (strcmp (header_text, CS_EXPORT_CSV_HEADER) != 0)
    {
      csv_error (error, source, header->line,
                 "not a Cordscope dataset CSV: the header must be \"%s\"",
                 CS_EXPORT_CSV_HEADER);
      return NULL;
    }

  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify)
                                                               cs_export_case_free);
  g_autoptr (GHashTable) by_name = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                          g_free);
  for (guint r = 1; r < records->len; r++)
    {
      CsvRecord *rec = records->pdata[r];
      char **f = (char **) rec->fields->pdata;
      guint line = rec->line;
      if (rec->fields->len != N_COLUMNS)
        {
          csv_error (error, source, line, "%u fields, expected %d (%s)", rec->fields->len,
                     N_COLUMNS, CS_EXPORT_CSV_HEADER);
          return NULL;
        }
      if (*f[0] == '\0')
        {
          csv_error (error, source, line, "the case name is empty");
          return NULL;
        }
      int segment = segment_index (f[1]);
      if (segment < 0)
        {
          csv_error (error, source, line,
                     "\"%s\" is not a segment (C2-3, C3-4, C4-5, C5-6, C6-7, C7-T1)", f[1]);
          return NULL;
        }
      CsSegmentLabel label;
      if (!cs_segment_label_from_string (f[2], &label))
        {
          csv_error (error, source, line,
                     "label \"%s\" is not normal, hyperintense, uncertain or unset", f[2]);
          return NULL;
        }
      if (*f[4] != '\0')
        {
          g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (f[4], NULL);
          if (t == NULL)
            {
              csv_error (error, source, line,
                         "time \"%s\" is not ISO 8601 (e.g. 2026-11-27T14:05:09Z)", f[4]);
              return NULL;
            }
        }
      double score = NAN;
      if (*f[5] != '\0')
        {
          char *endp = NULL;
          score = g_ascii_strtod (f[5], &endp);
          if (endp == f[5] || *endp != '\0' || !isfinite (score))
            {
              csv_error (error, source, line, "model_score \"%s\" is not a number", f[5]);
              return NULL;
            }
        }
      int review = -1;
      for (int v = 0; v < 3; v++)
        if (strcmp (f[6], review_names[v]) == 0)
          review = v;
      if (review < 0)
        {
          csv_error (error, source, line, "review \"%s\" is not pass, fail or unset", f[6]);
          return NULL;
        }
      if (strcmp (f[7], "true") != 0 && strcmp (f[7], "false") != 0)
        {
          csv_error (error, source, line, "artifact \"%s\" is not true or false", f[7]);
          return NULL;
        }
      gboolean artifact = strcmp (f[7], "true") == 0;

      CaseEntry *entry = g_hash_table_lookup (by_name, f[0]);
      if (entry == NULL)
        {
          entry = g_new0 (CaseEntry, 1);
          entry->ec = cs_export_case_new (f[0]);
          g_free (entry->ec->sidecar->image_file);
          entry->ec->sidecar->image_file = g_strdup ("");
          g_clear_pointer (&entry->ec->sidecar->created, g_free);
          g_clear_pointer (&entry->ec->sidecar->modified, g_free);
          entry->first_line = line;
          CsSidecar *s = entry->ec->sidecar;
          s->review = (CsReview) review;
          s->artifact = artifact;
          g_free (s->flag_reason);
          s->flag_reason = g_strdup (f[8]);
          g_free (s->note);
          s->note = g_strdup (f[9]);
          g_ptr_array_add (out, entry->ec);
          g_hash_table_insert (by_name, entry->ec->sidecar->case_name, entry);
        }
      CsSidecar *s = entry->ec->sidecar;
      if (s->review != (CsReview) review || s->artifact != artifact
          || strcmp (s->flag_reason, f[8]) != 0 || strcmp (s->note, f[9]) != 0)
        {
          csv_error (error, source, line,
                     "case \"%s\": review, artifact, reason or note differ from line %u",
                     f[0], entry->first_line);
          return NULL;
        }
      if (entry->seen & (1u << segment))
        {
          csv_error (error, source, line, "case \"%s\" lists segment %s twice", f[0], f[1]);
          return NULL;
        }
      entry->seen |= 1u << segment;
      CsSegmentAnnotation *a = &s->segments[segment];
      a->label = label;
      a->annotator = *f[3] ? g_strdup (f[3]) : NULL;
      a->time = *f[4] ? g_strdup (f[4]) : NULL;
      entry->ec->model_score[segment] = score;
    }
  return g_steal_pointer (&out);
}

GPtrArray *
cs_import_csv (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize length = 0;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &text, &length, &local))
    {
      g_set_error_literal (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, local->message);
      return NULL;
    }
  return cs_import_csv_text (text, (gssize) length, path, error);
}

/* ---- SCT disc labels -------------------------------------------------------------- */

char *
cs_export_disc_labels_path (const char *dir, const char *case_name)
{
  g_autofree char *name = g_strconcat (case_name, "_labels-disc.nii.gz", NULL);
  return g_build_filename (dir, name, NULL);
}

gboolean
cs_export_disc_labels (const CsVolume *image, const GArray *discs, const char *path,
                       GError **error)
{
  g_return_val_if_fail (image != NULL && path != NULL, FALSE);
  g_autoptr (CsVolume) labels = cs_volume_new_like (image);
  for (guint d = 0; discs != NULL && d < discs->len; d++)
    {
      const CsDisc *disc = &g_array_index (discs, CsDisc, d);
      const char *name = cs_disc_name (disc->value);
      if (disc->value < 1 || disc->value > 255)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                       "%s: disc value %d does not fit a label file (1..255)", path,
                       disc->value);
          return FALSE;
        }
      long v[3];
      for (int a = 0; a < 3; a++)
        {
          v[a] = lround (disc->voxel[a]);
          if (!isfinite (disc->voxel[a]) || v[a] < 0 || v[a] >= image->dim[a])
            {
              g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                           "%s: disc %s (%d) at voxel (%g, %g, %g) lies outside the image "
                           "grid %d x %d x %d", path, name ? name : "?", disc->value,
                           disc->voxel[0], disc->voxel[1], disc->voxel[2], image->dim[0],
                           image->dim[1], image->dim[2]);
              return FALSE;
            }
        }
      gsize at = ((gsize) v[2] * labels->dim[1] + (gsize) v[1]) * labels->dim[0] + (gsize) v[0];
      if (labels->data[at] != 0)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                       "%s: discs %g and %d fall on the same voxel (%ld, %ld, %ld)", path,
                       labels->data[at], disc->value, v[0], v[1], v[2]);
          return FALSE;
        }
      labels->data[at] = (float) disc->value;
    }
  return cs_volume_save (labels, path, NIFTI_DT_UINT8, error);
}

/* ---- JSON dataset ----------------------------------------------------------------- */

char *
cs_export_json_text (GPtrArray *cases)
{
  JsonObject *root = json_object_new ();
  json_object_set_string_member (root, "format", "cordscope-dataset");
  json_object_set_int_member (root, "version", 1);
  g_autofree char *now = cs_sidecar_now ();
  json_object_set_string_member (root, "exported", now);
  JsonArray *list = json_array_new ();
  for (guint c = 0; c < cases->len; c++)
    {
      const CsExportCase *ec = cases->pdata[c];
      g_autofree char *text = cs_sidecar_to_json (ec->sidecar);
      JsonNode *node = json_from_string (text, NULL);
      g_assert (node != NULL);
      JsonObject *scores = json_object_new ();
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        {
          const char *name = cs_segment_name (CS_SEGMENT_FIRST_DISC + i);
          if (isfinite (ec->model_score[i]))
            json_object_set_double_member (scores, name, ec->model_score[i]);
          else
            json_object_set_null_member (scores, name);
        }
      JsonObject *entry = json_node_get_object (node);
      json_object_set_object_member (entry, "model_scores", scores);
      json_object_set_double_member (entry, "centerline_width", ec->centerline_width);
      if (ec->discs != NULL)
        {
          JsonArray *discs = json_array_new ();
          for (guint d = 0; d < ec->discs->len; d++)
            {
              const CsDisc *disc = &g_array_index (ec->discs, CsDisc, d);
              JsonObject *o = json_object_new ();
              json_object_set_int_member (o, "value", disc->value);
              if (cs_disc_name (disc->value) != NULL)
                json_object_set_string_member (o, "name", cs_disc_name (disc->value));
              else
                json_object_set_null_member (o, "name");
              JsonArray *voxel = json_array_new ();
              for (int a = 0; a < 3; a++)
                json_array_add_double_element (voxel, disc->voxel[a]);
              json_object_set_array_member (o, "voxel", voxel);
              json_object_set_string_member (o, "source", cs_disc_source_to_string (disc->source));
              json_array_add_object_element (discs, o);
            }
          json_object_set_array_member (entry, "effective_discs", discs);
        }
      else if (ec->discs_error != NULL)
        json_object_set_string_member (entry, "effective_discs_error", ec->discs_error);
      json_array_add_element (list, node);
    }
  json_object_set_array_member (root, "cases", list);
  g_autoptr (JsonNode) root_node = json_node_init_object (json_node_alloc (), root);
  json_object_unref (root);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root_node);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  return g_strconcat (text, "\n", NULL);
}

gboolean
cs_export_json (GPtrArray *cases, const char *path, GError **error)
{
  g_autofree char *text = cs_export_json_text (cases);
  return write_text (path, text, error);
}
