/* annotation-bench: a scripted labelling session over N phantom cases (default 100), as
 * the window drives it through the annotation actions, with background autosave; prints
 * the main-thread time per action (median, 99th percentile, worst) and the time until
 * every case is on disk. `meson test --benchmark annotation-bench` or run it directly:
 * annotation-bench [N_CASES]. */
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/cs-annotation.h"
#include "io/cs-phantom.h"

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

int
main (int argc, char **argv)
{
  guint n_cases = argc > 1 ? (guint) atoi (argv[1]) : 100;
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cs-annotation-bench-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv ("XDG_DATA_HOME", dir, TRUE);   /* recovery files stay in the sandbox */

  /* Disc positions from real phantom disc volumes (a few, reused), so discs are placed
   * where an annotator would put them. */
  CsPhantomOptions options;
  cs_phantom_options_init (&options);
  options.size = CS_PHANTOM_SIZE_SMALL;
  GArray *phantom_discs[4];
  for (guint p = 0; p < 4; p++)
    {
      g_autoptr (CsPhantomCase) pc = cs_phantom_case_generate (&options, p);
      phantom_discs[p] = cs_discs_from_volume (pc->discs, CS_LABEL_FILE_DISCS, &error);
      g_assert_no_error (error);
    }

  GArray *times = g_array_new (FALSE, FALSE, sizeof (double));
  GRand *rand = g_rand_new_with_seed (1);
  gint64 start = g_get_monotonic_time ();
#define TIMED(call)                                                                   \
  do                                                                                  \
    {                                                                                 \
      gint64 t0 = g_get_monotonic_time ();                                            \
      call;                                                                           \
      double ms = (g_get_monotonic_time () - t0) / 1000.0;                            \
      g_array_append_val (times, ms);                                                 \
      g_main_context_iteration (NULL, FALSE);   /* the window's loop between keys */  \
    }                                                                                 \
  while (0)
  static const char *const labels[] = { "normal", "hyperintense", "uncertain" };
  for (guint c = 0; c < n_cases; c++)
    {
      g_autofree char *path = g_strdup_printf ("%s/case-%04u.cordscope.json", dir, c);
      g_autofree char *name = g_strdup_printf ("case-%04u", c);
      g_autoptr (CsAnnotation) doc = cs_annotation_open (path, name, "case.nii.gz", &error);
      g_assert_no_error (error);
      cs_annotation_set_annotator (doc, "bench");
      cs_annotation_set_save_in_background (doc, TRUE);
      GArray *file = phantom_discs[c % 4];
      cs_annotation_set_file_discs (doc, file);
      CsSegmentLabel calls[CS_N_SEGMENTS];
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        calls[i] = g_rand_int_range (rand, 0, 5) ? CS_SEGMENT_LABEL_NORMAL
                                                 : CS_SEGMENT_LABEL_HYPERINTENSE;
      cs_annotation_set_model_calls (doc, calls, NULL);
      GActionGroup *actions = cs_annotation_get_action_group (doc);
      /* Correct one disc, label three segments by key, accept the model for the rest,
       * change one's mind (undo, redo), flag and note. */
      const CsDisc *d = &g_array_index (file, CsDisc, 1);
      TIMED (g_action_group_activate_action (actions, "place-disc",
                                             g_variant_new ("(iddd)", d->value, d->voxel[0],
                                                            d->voxel[1] + 1, d->voxel[2])));
      for (int i = 0; i < 3; i++)
        TIMED (g_action_group_activate_action (actions, "set-label",
                                               g_variant_new ("(is)", i,
                                                              labels[g_rand_int_range (rand, 0,
                                                                                       3)])));
      TIMED (g_action_group_activate_action (actions, "accept-model", NULL));
      TIMED (g_action_group_activate_action (actions, "undo", NULL));
      TIMED (g_action_group_activate_action (actions, "redo", NULL));
      TIMED (g_action_group_activate_action (actions, "set-flags",
                                             g_variant_new ("(sbs)", "pass", FALSE, "")));
      if (c % 10 == 0)
        TIMED (g_action_group_activate_action (actions, "set-note",
                                               g_variant_new_string ("checked with STIR")));
      /* Next case: what is not written yet is written now. */
      if (!cs_annotation_flush (doc, &error))
        g_error ("%s", error->message);
      g_assert_cmpuint (cs_sidecar_n_labelled (cs_annotation_get_sidecar (doc)), ==,
                        CS_N_SEGMENTS);
    }
  double total_s = (g_get_monotonic_time () - start) / 1e6;
  g_array_sort (times, compare_doubles);
  guint n = times->len;
  printf ("annotation-bench: %u cases, %u actions with background autosave: main-thread "
          "time per action median %.3f ms, p99 %.3f ms, worst %.3f ms; session %.2f s "
          "(%.1f ms per case, including the flush on leaving each case)\n",
          n_cases, n, g_array_index (times, double, n / 2),
          g_array_index (times, double, (guint) (n * 0.99)), g_array_index (times, double, n - 1),
          total_s, 1000 * total_s / n_cases);

  /* Every case is on disk with its six labels. */
  for (guint c = 0; c < n_cases; c++)
    {
      g_autofree char *path = g_strdup_printf ("%s/case-%04u.cordscope.json", dir, c);
      g_autoptr (CsSidecar) s = cs_sidecar_load (path, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (cs_sidecar_n_labelled (s), ==, CS_N_SEGMENTS);
      g_autofree char *bak = g_strconcat (path, ".bak", NULL);
      g_unlink (path);
      g_unlink (bak);
    }
  g_rmdir (dir);
  for (guint p = 0; p < 4; p++)
    g_array_unref (phantom_discs[p]);
  g_array_unref (times);
  g_rand_free (rand);
  return 0;
}
