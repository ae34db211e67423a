/* kill-child: the headless core of the kill test. Opens (or continues) the annotation
 * document SIDECAR, applies random annotation actions forever (or STEPS of them), saving
 * after each, and prints before each save "PENDING n STATE" and after each successful one
 * "SAVED n STATE", where STATE is what the sidecar must then hold (see state_line()).
 * With --background the writes go through the worker thread, as in the window, and SAVED
 * is printed when the save state the window shows turns "saved".
 * kill-test-core.sh kills it at random moments and checks the file against these lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/cs-annotation.h"

/* labels=NH-U-- review=P artifact=1 note=TEXT discs=3@i/j/k,5@i/j/k (own discs) */
static char *
state_line (CsAnnotation *doc)
{
  const CsSidecar *s = cs_annotation_get_sidecar (doc);
  GString *out = g_string_new ("labels=");
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    g_string_append_c (out, "-NHU"[s->segments[i].label]);
  g_string_append_printf (out, " review=%c artifact=%d note=%s discs=", "-PF"[s->review],
                          s->artifact ? 1 : 0, s->note);
  for (guint i = 0; i < s->discs->len; i++)
    {
      const CsDisc *d = &g_array_index (s->discs, CsDisc, i);
      g_string_append_printf (out, "%s%d@%d/%d/%d", i ? "," : "", d->value, (int) d->voxel[0],
                              (int) d->voxel[1], (int) d->voxel[2]);
    }
  return g_string_free (out, FALSE);
}

int
main (int argc, char **argv)
{
  if (argc < 3)
    {
      fprintf (stderr, "usage: %s SIDECAR SEED [STEPS] [--background]\n", argv[0]);
      return 2;
    }
  gboolean background = strcmp (argv[argc - 1], "--background") == 0;
  if (background)
    argc--;
  guint64 steps = argc > 3 ? g_ascii_strtoull (argv[3], NULL, 10) : G_MAXUINT64;
  g_autoptr (GError) error = NULL;
  g_autoptr (CsAnnotation) doc = cs_annotation_open (argv[1], "kill", "kill.nii.gz", &error);
  if (doc == NULL)
    {
      fprintf (stderr, "kill-child: %s\n", error->message);
      return 1;
    }
  /* Saves are explicit here, so the PENDING line can come between change and save. */
  cs_annotation_set_autosave (doc, FALSE);
  cs_annotation_set_save_in_background (doc, background);
  cs_annotation_set_annotator (doc, "kill-test");
  GRand *rand = g_rand_new_with_seed ((guint32) g_ascii_strtoull (argv[2], NULL, 10));
  g_autofree char *start = state_line (doc);
  printf ("START %s\n", start);
  fflush (stdout);
  for (guint64 n = 1; n <= steps; n++)
    {
      int op = g_rand_int_range (rand, 0, 10);
      gboolean changed;
      if (op < 5)
        changed = cs_annotation_set_segment_label (doc, g_rand_int_range (rand, 0, 6),
                                                   (CsSegmentLabel) g_rand_int_range (rand, 0,
                                                                                      4));
      else if (op == 5)
        {
          double voxel[3] = { 4, g_rand_int_range (rand, 0, 80), 7 };
          changed = cs_annotation_place_disc (doc, g_rand_int_range (rand, 3, 9), voxel);
        }
      else if (op == 6)
        changed = cs_annotation_delete_disc (doc, g_rand_int_range (rand, 3, 9));
      else if (op == 7 && g_rand_boolean (rand))
        changed = cs_annotation_set_flags (doc, (CsReview) g_rand_int_range (rand, 0, 3),
                                           g_rand_boolean (rand), "kill test");
      else if (op == 7)
        {
          g_autofree char *note = g_strdup_printf ("step %" G_GUINT64_FORMAT, n);
          changed = cs_annotation_set_note (doc, note);
        }
      else if (op == 8)
        changed = cs_annotation_undo (doc);
      else
        changed = cs_annotation_redo (doc);
      if (!changed)
        continue;
      g_autofree char *state = state_line (doc);
      printf ("PENDING %" G_GUINT64_FORMAT " %s\n", n, state);
      fflush (stdout);
      if (background)
        {
          cs_annotation_request_save (doc);
          while (cs_annotation_get_save_state (doc) == CS_SAVE_STATE_DIRTY)
            g_main_context_iteration (NULL, TRUE);
          if (cs_annotation_get_save_state (doc) == CS_SAVE_STATE_FAILED)
            error = g_error_new_literal (CS_IO_ERROR, CS_IO_ERROR_OPEN,
                                         cs_annotation_get_last_error (doc));
        }
      if (background ? error != NULL : !cs_annotation_save (doc, &error))
        {
          printf ("FAILED %" G_GUINT64_FORMAT " %s\n", n, error->message);
          fflush (stdout);
          g_clear_error (&error);
          continue;
        }
      printf ("SAVED %" G_GUINT64_FORMAT " %s\n", n, state);
      fflush (stdout);
    }
  g_rand_free (rand);
  return 0;
}
