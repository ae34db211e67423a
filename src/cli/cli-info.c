/* cli-info.c: `cordscope-cli info FILE`: one JSON object with a volume's geometry, its
 * default sagittal slice, the label files found with it and the segments they give. */
#include "cs-cli.h"
#include "io/cs-case.h"
#include "io/cs-labels.h"
#include "io/cs-sidecar.h"
#include "io/cs-volume.h"

#include <json-glib/json-glib.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <string.h>

static void
add_path (JsonBuilder *b, const char *key, const char *path)
{
  json_builder_set_member_name (b, key);
  if (path != NULL)
    json_builder_add_string_value (b, path);
  else
    json_builder_add_null_value (b);
}

/* An array of numbers, as member KEY, or as an array element when KEY is NULL. */
static void
add_doubles (JsonBuilder *b, const char *key, const double *values, int n)
{
  if (key != NULL)
    json_builder_set_member_name (b, key);
  json_builder_begin_array (b);
  for (int i = 0; i < n; i++)
    json_builder_add_double_value (b, values[i]);
  json_builder_end_array (b);
}

/* The discs that define segments: disc labels first, else derived from vertebral labels,
 * else from the level map. Returns NULL with *error set on bad input, NULL without an
 * error when there is no such file. */
static GArray *
read_case_discs (const CsCase *c, const CsVolume *image, const char **used_path,
                 const char **used_kind, GError **error)
{
  const struct { const char *path; CsLabelFileKind kind; const char *name; } sources[] = {
    { c->discs_path, CS_LABEL_FILE_DISCS, "discs" },
    { c->vert_labels_path, CS_LABEL_FILE_VERTEBRAE, "vert_labels" },
    { c->levels_path, CS_LABEL_FILE_LEVELS, "levels" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    if (sources[i].path != NULL)
      {
        *used_path = sources[i].path;
        *used_kind = sources[i].name;
        return cs_discs_read (sources[i].path, sources[i].kind, image, error);
      }
  return NULL;
}

static void
add_segments (JsonBuilder *b, const CsSegment seg[CS_N_SEGMENTS], const GArray *discs)
{
  json_builder_set_member_name (b, "segments");
  json_builder_begin_array (b);
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    {
      if (!seg[s].present)
        continue;
      const CsDisc *disc = NULL;
      for (guint i = 0; i < discs->len; i++)
        if (g_array_index (discs, CsDisc, i).value == seg[s].disc_value)
          disc = &g_array_index (discs, CsDisc, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, seg[s].name);
      json_builder_set_member_name (b, "disc_value");
      json_builder_add_int_value (b, seg[s].disc_value);
      const double rows[2] = { seg[s].row_start, seg[s].row_end };
      add_doubles (b, "rows", rows, 2);
      json_builder_set_member_name (b, "disc_row");
      json_builder_add_double_value (b, seg[s].disc_row);
      if (disc != NULL)
        {
          add_doubles (b, "disc_voxel", disc->voxel, 3);
          json_builder_set_member_name (b, "disc_source");
          json_builder_add_string_value (b, cs_disc_source_to_string (disc->source));
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

int
cs_cli_info (int argc, char **argv)
{
  g_autofree char *annotations = NULL;
  const GOptionEntry entries[] = {
    { "annotations", 'a', 0, G_OPTION_ARG_FILENAME, &annotations,
      "Look for NAME.cordscope.json in DIR instead of next to the image", "DIR" },
    { NULL }
  };
  g_set_prgname ("cordscope-cli info");   /* for --help's usage line */
  g_autoptr (GOptionContext) context = g_option_context_new ("FILE");
  g_option_context_set_summary (context,
    "Prints one JSON object about a NIfTI image: file, dims, voxel_size_mm, orientation\n"
    "(axis codes, e.g. \"PSR\"), sagittal_axis, n_sagittal_slices, default_slice (largest\n"
    "cord area in the _seg mask, else the middle slice), affine (voxel to RAS+ mm),\n"
    "datatype, labels (seg, discs, lesion, vert_labels, levels, truth, sidecar: a path or\n"
    "null) and, when disc labels (else vertebral labels, else a level map) exist,\n"
    "segments: the segments C2-3 .. C7-T1 with their display rows [start, end) on the\n"
    "default slice (row 0 = most superior).");
  g_option_context_add_main_entries (context, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return cs_cli_fail ("info", "%s (see --help)", error->message);
  if (argc != 2)
    return cs_cli_fail ("info", "expected one FILE (see --help)");
  const char *path = argv[1];
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return cs_cli_fail ("info", "%s: is a folder; give one image file", path);

  g_autoptr (CsVolume) image = cs_volume_load (path, &error);
  if (image == NULL)
    return cs_cli_fail ("info", "%s", error->message);
  g_autoptr (GPtrArray) cases = cs_case_discover_full (path, annotations, &error);
  if (cases == NULL)
    return cs_cli_fail ("info", "%s", error->message);
  const CsCase *c = cases->pdata[0];

  g_autoptr (CsVolume) seg = NULL;
  if (c->seg_path != NULL)
    {
      seg = cs_volume_load (c->seg_path, &error);
      if (seg == NULL)
        return cs_cli_fail ("info", "%s", error->message);
      if (memcmp (seg->dim, image->dim, sizeof seg->dim) != 0)
        return cs_cli_fail ("info", "%s: cord mask grid %dx%dx%d does not match the image "
                            "(%dx%dx%d)", c->seg_path, seg->dim[0], seg->dim[1],
                            seg->dim[2], image->dim[0], image->dim[1], image->dim[2]);
    }
  int default_slice = cs_case_default_slice (image, seg);
  gboolean seg_has_cord = FALSE;
  for (gsize i = 0; seg != NULL && !seg_has_cord
                    && i < (gsize) seg->dim[0] * seg->dim[1] * seg->dim[2]; i++)
    seg_has_cord = seg->data[i] > 0.5f;

  const char *discs_path = NULL, *discs_kind = NULL;
  g_autoptr (GArray) discs = read_case_discs (c, image, &discs_path, &discs_kind, &error);
  if (discs == NULL && error != NULL)
    return cs_cli_fail ("info", "%s", error->message);
  CsSegment segments[CS_N_SEGMENTS];
  g_autoptr (GError) segments_error = NULL;
  gboolean have_segments = FALSE;
  if (discs != NULL)
    {
      g_autoptr (CsSagittal) view = cs_volume_extract_sagittal (image, default_slice);
      g_autofree char *source = strcmp (discs_kind, "discs") == 0
        ? g_strdup (discs_path)
        : g_strdup_printf ("%s (discs derived from %s)", discs_path,
                           strcmp (discs_kind, "levels") == 0 ? "the level map"
                                                              : "vertebral labels");
      have_segments = cs_segments_compute (discs, view, source, segments, &segments_error);
      /* Discs out of order or duplicated are bad input; too few discs is not. */
      if (!have_segments && !g_error_matches (segments_error, CS_IO_ERROR,
                                              CS_IO_ERROR_GEOMETRY))
        return cs_cli_fail ("info", "%s", segments_error->message);
    }

  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  add_path (b, "file", path);
  json_builder_set_member_name (b, "dims");
  json_builder_begin_array (b);
  for (int a = 0; a < 3; a++)
    json_builder_add_int_value (b, image->dim[a]);
  json_builder_end_array (b);
  add_doubles (b, "voxel_size_mm", image->pixdim, 3);
  char codes[4];
  cs_volume_axcodes (image, codes);
  add_path (b, "orientation", codes);
  json_builder_set_member_name (b, "sagittal_axis");
  json_builder_add_int_value (b, cs_volume_sagittal_axis (image));
  json_builder_set_member_name (b, "n_sagittal_slices");
  json_builder_add_int_value (b, image->dim[cs_volume_sagittal_axis (image)]);
  json_builder_set_member_name (b, "default_slice");
  json_builder_add_int_value (b, default_slice);
  /* Why this slice: the cord mask's largest area, or the middle for want of a mask. */
  add_path (b, "default_slice_from", seg_has_cord ? "seg" : seg ? "middle (empty cord mask)"
                                                                : "middle (no cord mask)");
  json_builder_set_member_name (b, "affine");
  json_builder_begin_array (b);
  for (int r = 0; r < 4; r++)
    add_doubles (b, NULL, image->vox2mm[r], 4);
  json_builder_end_array (b);
  add_path (b, "datatype", cs_nifti_datatype_name (image->datatype));
  json_builder_set_member_name (b, "nifti_version");
  json_builder_add_int_value (b, image->nifti_version);

  json_builder_set_member_name (b, "labels");
  json_builder_begin_object (b);
  add_path (b, "seg", c->seg_path);
  add_path (b, "discs", c->discs_path);
  add_path (b, "lesion", c->lesion_path);
  add_path (b, "vert_labels", c->vert_labels_path);
  add_path (b, "levels", c->levels_path);
  add_path (b, "truth", c->truth_path);
  add_path (b, "sidecar", c->sidecar_path);
  json_builder_end_object (b);

  if (discs != NULL)
    {
      json_builder_set_member_name (b, "segments_from");
      json_builder_begin_object (b);
      add_path (b, "kind", discs_kind);
      add_path (b, "path", discs_path);
      json_builder_end_object (b);
      if (have_segments)
        add_segments (b, segments, discs);
      else
        {
          json_builder_set_member_name (b, "segments");
          json_builder_begin_array (b);
          json_builder_end_array (b);
          add_path (b, "segments_note", segments_error->message);
        }
    }
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
  return fflush (stdout) == 0 ? 0 : cs_cli_fail ("info", "cannot write the output");
}
