/* cli-export.c: `cordscope-cli export`: a dataset's annotations as CSV, JSON and SCT
 * disc-label files, and labels from a CSV back into the cases' sidecars. */
#include "cs-cli.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/cs-annotation.h"
#include "io/cs-case.h"
#include "io/cs-export.h"

/* Segment scores by case name from detect's JSON (one object or an array of them). */
static GHashTable *
read_detections (const char *path, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, path, error))
    return NULL;
  JsonNode *root = json_parser_get_root (parser);
  g_autoptr (GHashTable) scores = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                         g_free);
  JsonArray *list = NULL;
  g_autoptr (JsonArray) single = NULL;
  if (root != NULL && JSON_NODE_HOLDS_ARRAY (root))
    list = json_node_get_array (root);
  else if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      single = json_array_new ();
      json_array_add_element (single, json_node_copy (root));
      list = single;
    }
  for (guint i = 0; list != NULL && i < json_array_get_length (list); i++)
    {
      JsonNode *node = json_array_get_element (list, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *format = o ? json_object_get_string_member_with_default (o, "format", "")
                             : "";
      const char *name = o ? json_object_get_string_member_with_default (o, "case", NULL)
                           : NULL;
      JsonNode *segments = o ? json_object_get_member (o, "segments") : NULL;
      if (strcmp (format, "cordscope-detection") != 0 || name == NULL || segments == NULL
          || !JSON_NODE_HOLDS_ARRAY (segments)
          || json_array_get_length (json_node_get_array (segments)) != CS_N_SEGMENTS)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: entry %u is not a cordscope-detection object with six segments",
                       path, i);
          return NULL;
        }
      double *s = g_new (double, CS_N_SEGMENTS);
      for (guint k = 0; k < CS_N_SEGMENTS; k++)
        {
          JsonNode *seg = json_array_get_element (json_node_get_array (segments), k);
          JsonNode *score = JSON_NODE_HOLDS_OBJECT (seg)
            ? json_object_get_member (json_node_get_object (seg), "score") : NULL;
          s[k] = score != NULL && JSON_NODE_HOLDS_VALUE (score)
            ? json_node_get_double (score) : NAN;
        }
      g_hash_table_replace (scores, g_strdup (name), s);
    }
  return g_steal_pointer (&scores);
}

static gboolean
same_file (const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return FALSE;
  g_autofree char *x = g_canonicalize_filename (a, NULL);
  g_autofree char *y = g_canonicalize_filename (b, NULL);
  return strcmp (x, y) == 0;
}

static int
import_csv (GPtrArray *cases, const char *csv, const char *annotator)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) rows = cs_import_csv (csv, &error);
  if (rows == NULL)
    return cs_cli_fail ("export", "%s", error->message);
  /* Every case in the CSV must exist before any sidecar changes. */
  g_autoptr (GPtrArray) targets = g_ptr_array_new ();
  for (guint r = 0; r < rows->len; r++)
    {
      const CsExportCase *ec = rows->pdata[r];
      const CsCase *match = NULL;
      for (guint c = 0; c < cases->len && match == NULL; c++)
        if (strcmp (((CsCase *) cases->pdata[c])->name, ec->sidecar->case_name) == 0)
          match = cases->pdata[c];
      if (match == NULL)
        return cs_cli_fail ("export", "%s: case \"%s\" is not in the data; nothing imported",
                            csv, ec->sidecar->case_name);
      g_ptr_array_add (targets, (gpointer) match);
    }
  guint changed = 0;
  for (guint r = 0; r < rows->len; r++)
    {
      g_autoptr (CsAnnotation) doc = cs_annotation_open_case (targets->pdata[r], &error);
      if (doc == NULL)
        return cs_cli_fail ("export", "%s", error->message);
      cs_annotation_set_annotator (doc, annotator);
      if (cs_annotation_import_labels (doc, ((CsExportCase *) rows->pdata[r])->sidecar))
        changed++;
      if (cs_annotation_get_save_state (doc) == CS_SAVE_STATE_FAILED)
        return cs_cli_fail ("export", "%s", cs_annotation_get_last_error (doc));
    }
  fprintf (stderr, "imported %u cases from %s (%u sidecars changed)\n", rows->len, csv,
           changed);
  return 0;
}

int
cs_cli_export (int argc, char **argv)
{
  g_autofree char *annotations = NULL, *csv = NULL, *json = NULL, *discs = NULL;
  g_autofree char *detections = NULL, *import = NULL, *annotator = NULL;
  const GOptionEntry entries[] = {
    { "annotations", 'a', 0, G_OPTION_ARG_FILENAME, &annotations,
      "Read (and, with --import, write) NAME.cordscope.json in DIR", "DIR" },
    { "csv", 0, 0, G_OPTION_ARG_FILENAME, &csv,
      "Write the dataset CSV: " CS_EXPORT_CSV_HEADER, "FILE" },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json, "Write the dataset as JSON", "FILE" },
    { "discs", 0, 0, G_OPTION_ARG_FILENAME, &discs,
      "Write NAME_labels-disc.nii.gz (SCT: one voxel per disc, 3..8) per case into DIR",
      "DIR" },
    { "detections", 0, 0, G_OPTION_ARG_FILENAME, &detections,
      "Model scores for the CSV/JSON from `cordscope-cli detect --json` output", "FILE" },
    { "import", 0, 0, G_OPTION_ARG_FILENAME, &import,
      "Instead: put the labels of a dataset CSV into the cases' sidecars", "FILE" },
    { "annotator", 0, 0, G_OPTION_ARG_STRING, &annotator,
      "With --import: who imports (the sidecar's annotator)", "NAME" },
    { NULL }
  };
  g_set_prgname ("cordscope-cli export");
  g_autoptr (GOptionContext) context = g_option_context_new ("DATA");
  g_option_context_set_summary (context,
    "Exports the annotations of the cases in DATA (an image, a folder or a BIDS tree): a\n"
    "dataset CSV (one row per case and segment; quoted as RFC 4180), a JSON dataset (each\n"
    "case's sidecar plus model_scores) and SCT disc-label files on each case's own grid.\n"
    "Cases without a sidecar are exported unlabelled. Files are written atomically.");
  g_option_context_add_main_entries (context, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return cs_cli_fail ("export", "%s (see --help)", error->message);
  if (argc != 2)
    return cs_cli_fail ("export", "expected one DATA path (see --help)");
  if (import == NULL && csv == NULL && json == NULL && discs == NULL)
    return cs_cli_fail ("export", "nothing to do: give --csv, --json, --discs or --import");

  g_autoptr (GPtrArray) cases = cs_case_discover_full (argv[1], annotations, &error);
  if (cases == NULL)
    return cs_cli_fail ("export", "%s", error->message);
  if (import != NULL)
    return import_csv (cases, import, annotator ? annotator : g_get_user_name ());

  g_autoptr (GPtrArray) labels = cs_export_collect (cases, &error);
  if (labels == NULL)
    return cs_cli_fail ("export", "%s", error->message);
  if (detections != NULL)
    {
      g_autoptr (GHashTable) scores = read_detections (detections, &error);
      if (scores == NULL)
        return cs_cli_fail ("export", "%s", error->message);
      for (guint c = 0; c < labels->len; c++)
        {
          CsExportCase *ec = labels->pdata[c];
          const double *s = g_hash_table_lookup (scores, ((CsCase *) cases->pdata[c])->name);
          for (int k = 0; s != NULL && k < CS_N_SEGMENTS; k++)
            ec->model_score[k] = s[k];
        }
    }
  if (csv != NULL && !cs_export_csv (labels, csv, &error))
    return cs_cli_fail ("export", "%s", error->message);
  if (json != NULL && !cs_export_json (labels, json, &error))
    return cs_cli_fail ("export", "%s", error->message);
  guint written = 0;
  if (discs != NULL)
    {
      if (g_mkdir_with_parents (discs, 0755) != 0)
        return cs_cli_fail ("export", "%s: cannot create the folder", discs);
      for (guint c = 0; c < cases->len; c++)
        {
          const CsCase *k = cases->pdata[c];
          g_autoptr (CsVolume) image = cs_volume_load (k->image_path, &error);
          if (image == NULL)
            return cs_cli_fail ("export", "%s", error->message);
          g_autoptr (GArray) d = cs_case_effective_discs (k, image, &error);
          if (d == NULL)
            return cs_cli_fail ("export", "%s", error->message);
          if (d->len == 0)
            continue;
          g_autofree char *out = cs_export_disc_labels_path (discs, k->name);
          /* Never over a disc file someone made: export into another folder. */
          if (same_file (out, k->discs_path))
            return cs_cli_fail ("export", "%s is the case's own disc file; choose another "
                                "--discs folder", out);
          if (!cs_export_disc_labels (image, d, out, &error))
            return cs_cli_fail ("export", "%s", error->message);
          written++;
        }
    }
  fprintf (stderr, "exported %u cases%s%s%s%s", cases->len, csv ? ", CSV " : "",
           csv ? csv : "", json ? ", JSON " : "", json ? json : "");
  if (discs != NULL)
    fprintf (stderr, ", %u disc-label files in %s", written, discs);
  fprintf (stderr, "\n");
  return 0;
}
