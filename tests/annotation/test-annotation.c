/* test-annotation: the annotation document: undo/redo against a simple model, the
 * sidecar round trip of every field, failed saves with the recovery file, recovery
 * detection on open, and the GActions the window drives. */
#include "cs-test-util.h"
#include "io/cs-annotation.h"
#include "io/cs-export.h"
#include "io/cs-centerline.h"
#include "io/cs-phantom.h"
#include "io/cs-slice2d.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------- */

static char *
read_text (const char *path)
{
  char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static CsAnnotation *
open_doc (const char *path)
{
  g_autoptr (GError) error = NULL;
  CsAnnotation *doc = cs_annotation_open (path, "case-1", "case-1.nii.gz", &error);
  g_assert_no_error (error);
  g_assert_nonnull (doc);
  return doc;
}

/* ---- the model: the document's state, by value, and its history ------------------- */

#define N_VALUES 26
static const char *const annotators[] = { "", "jd", "mk", "Zoë" };
static const char *const texts[] = { "", "motion", "wrap-around, \"ghost\"", "a\nb, c" };
static const double file_voxels[3][3] = { { 5, 40, 3 }, { 5, 30, 3 }, { 5, 20, 3 } };
static const int file_values[3] = { 3, 4, 5 };

typedef struct
{
  CsSegmentLabel label[CS_N_SEGMENTS];
  const char *who[CS_N_SEGMENTS];   /* NULL when unset or no annotator */
  gboolean has_disc[N_VALUES];
  double disc[N_VALUES][3];
  guint32 removed;
  CsReview review;
  gboolean artifact;
  const char *reason;
  const char *note;
  guint centerline_n;
  int centerline_seed;
  double width;
} Model;

static gboolean
model_equal (const Model *a, const Model *b)
{
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    if (a->label[i] != b->label[i] || g_strcmp0 (a->who[i], b->who[i]) != 0)
      return FALSE;
  for (int v = 0; v < N_VALUES; v++)
    if (a->has_disc[v] != b->has_disc[v]
        || (a->has_disc[v] && memcmp (a->disc[v], b->disc[v], sizeof a->disc[v]) != 0))
      return FALSE;
  return a->removed == b->removed && a->review == b->review && a->artifact == b->artifact
    && strcmp (a->reason, b->reason) == 0 && strcmp (a->note, b->note) == 0
    && a->centerline_n == b->centerline_n && a->width == b->width
    && (a->centerline_n == 0 || a->centerline_seed == b->centerline_seed);
}

static void
centerline_points (int seed, guint n, CsCenterlinePoint *out)
{
  for (guint i = 0; i < n; i++)
    {
      out[i].voxel[0] = seed;
      out[i].voxel[1] = 50.0 - 7.5 * i;
      out[i].voxel[2] = 3.25;
    }
}

static void
check_against_model (CsAnnotation *doc, const Model *m)
{
  const CsSidecar *s = cs_annotation_get_sidecar (doc);
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      g_assert_cmpint (s->segments[i].label, ==, m->label[i]);
      g_assert_cmpstr (s->segments[i].annotator, ==, m->who[i]);
      g_assert_true ((s->segments[i].time != NULL) == (m->label[i] != CS_SEGMENT_LABEL_UNSET));
    }
  guint n_own = 0;
  for (int v = 0; v < N_VALUES; v++)
    if (m->has_disc[v])
      {
        g_assert_cmpuint (n_own, <, s->discs->len);
        const CsDisc *d = &g_array_index (s->discs, CsDisc, n_own);
        g_assert_cmpint (d->value, ==, v);
        g_assert_cmpint (d->source, ==, CS_DISC_SOURCE_MANUAL);
        g_assert_cmpmem (d->voxel, sizeof d->voxel, m->disc[v], sizeof m->disc[v]);
        n_own++;
      }
  g_assert_cmpuint (n_own, ==, s->discs->len);
  for (int v = 1; v < N_VALUES; v++)
    g_assert_cmpint (cs_annotation_disc_removed (doc, v), ==, (m->removed >> v) & 1);
  /* Effective discs: file discs not deleted, the annotator's over them. */
  g_autoptr (GArray) eff = cs_annotation_dup_discs (doc);
  guint k = 0;
  for (int v = 1; v < N_VALUES; v++)
    {
      const double *expect = NULL;
      if (m->has_disc[v])
        expect = m->disc[v];
      else if (!((m->removed >> v) & 1))
        for (int f = 0; f < 3; f++)
          if (file_values[f] == v)
            expect = file_voxels[f];
      if (expect == NULL)
        continue;
      g_assert_cmpuint (k, <, eff->len);
      g_assert_cmpint (g_array_index (eff, CsDisc, k).value, ==, v);
      g_assert_cmpmem (g_array_index (eff, CsDisc, k).voxel, 3 * sizeof (double), expect,
                       3 * sizeof (double));
      k++;
    }
  g_assert_cmpuint (k, ==, eff->len);
  g_assert_cmpint (s->review, ==, m->review);
  g_assert_cmpint (s->artifact, ==, m->artifact);
  g_assert_cmpstr (s->flag_reason, ==, m->reason);
  g_assert_cmpstr (s->note, ==, m->note);
  g_assert_cmpuint (s->centerline->len, ==, m->centerline_n);
  g_assert_cmpfloat (cs_annotation_get_centerline_width (doc), ==, m->width);
  CsCenterlinePoint expect[8];
  centerline_points (m->centerline_seed, m->centerline_n, expect);
  if (m->centerline_n > 0)
    g_assert_cmpmem (s->centerline->data, m->centerline_n * sizeof (CsCenterlinePoint),
                     expect, m->centerline_n * sizeof (CsCenterlinePoint));
}

/* Runs N_STEPS random actions (half of them through the GActions) and undo/redo on DOC
 * and on the model, comparing after every step. With CHECK_DISK, the sidecar on disk
 * must hold exactly the document after every step. */
static void
random_session (CsAnnotation *doc, guint32 seed, guint n_steps, gboolean check_disk)
{
  GRand *rand = g_rand_new_with_seed (seed);
  GActionGroup *actions = cs_annotation_get_action_group (doc);
  g_autoptr (GArray) discs = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  for (int f = 0; f < 3; f++)
    {
      CsDisc d = { .value = file_values[f], .source = CS_DISC_SOURCE_FILE };
      memcpy (d.voxel, file_voxels[f], sizeof d.voxel);
      g_array_append_val (discs, d);
    }
  cs_annotation_set_file_discs (doc, discs);
  GArray *history = g_array_new (FALSE, TRUE, sizeof (Model));
  Model initial = { .reason = "", .note = "" };
  g_array_append_val (history, initial);
  guint cur = 0;
  CsSegmentLabel calls[CS_N_SEGMENTS] = { 0 };
  const char *who = "";
  guint n_changes = 0, n_undo = 0, n_redo = 0;

  for (guint step = 0; step < n_steps; step++)
    {
      Model m = g_array_index (history, Model, cur);
      gboolean via_action = g_rand_boolean (rand);
      gboolean changed;
      int op = g_rand_int_range (rand, 0, 14);
      if (op >= 12)
        op = 2 + (op - 12);   /* more undo and redo, so that long chains of both occur */
      if (op == 0)
        {
          who = annotators[g_rand_int_range (rand, 0, G_N_ELEMENTS (annotators))];
          cs_annotation_set_annotator (doc, who);
          continue;
        }
      if (op == 1)
        {
          for (int i = 0; i < CS_N_SEGMENTS; i++)
            calls[i] = (CsSegmentLabel) g_rand_int_range (rand, 0, 4);
          cs_annotation_set_model_calls (doc, calls, NULL);
          continue;
        }
      if (op == 2 || op == 3)
        {
          gboolean undo = op == 2;
          gboolean possible = undo ? cur > 0 : cur + 1 < history->len;
          const char *name = undo ? "undo" : "redo";
          g_assert_cmpint (g_action_group_get_action_enabled (actions, name), ==, possible);
          g_assert_cmpint (undo ? cs_annotation_can_undo (doc) : cs_annotation_can_redo (doc),
                           ==, possible);
          if (via_action)
            {
              if (possible)
                g_action_group_activate_action (actions, name, NULL);
              changed = possible;
            }
          else
            changed = undo ? cs_annotation_undo (doc) : cs_annotation_redo (doc);
          g_assert_cmpint (changed, ==, possible);
          if (possible)
            {
              cur += undo ? -1 : 1;
              undo ? n_undo++ : n_redo++;
            }
          check_against_model (doc, &g_array_index (history, Model, cur));
          continue;
        }

      const char *w = *who ? who : NULL;
      if (op <= 6)
        {
          int seg = g_rand_int_range (rand, 0, CS_N_SEGMENTS);
          CsSegmentLabel label = (CsSegmentLabel) g_rand_int_range (rand, 0, 4);
          if (via_action)
            g_action_group_activate_action (actions, "set-label",
                                            g_variant_new ("(is)", seg,
                                                           cs_segment_label_to_string (label)));
          else
            cs_annotation_set_segment_label (doc, seg, label);
          m.label[seg] = label;
          m.who[seg] = label == CS_SEGMENT_LABEL_UNSET ? NULL : w;
        }
      else if (op == 7)
        {
          int v = g_rand_int_range (rand, 2, 10);
          double voxel[3] = { 5, g_rand_int_range (rand, 0, 4) * 10.5, 3 };
          if (via_action)
            g_action_group_activate_action (actions, "place-disc",
                                            g_variant_new ("(iddd)", v, voxel[0], voxel[1],
                                                           voxel[2]));
          else
            cs_annotation_place_disc (doc, v, voxel);
          m.has_disc[v] = TRUE;
          memcpy (m.disc[v], voxel, sizeof voxel);
          m.removed &= ~(1u << v);
        }
      else if (op == 8)
        {
          int v = g_rand_int_range (rand, 2, 10);
          if (via_action)
            g_action_group_activate_action (actions, "delete-disc", g_variant_new_int32 (v));
          else
            cs_annotation_delete_disc (doc, v);
          m.has_disc[v] = FALSE;
          if (v >= 3 && v <= 5)
            m.removed |= 1u << v;
        }
      else if (op == 9)
        {
          CsReview review = (CsReview) g_rand_int_range (rand, 0, 3);
          gboolean artifact = g_rand_boolean (rand);
          const char *reason = texts[g_rand_int_range (rand, 0, G_N_ELEMENTS (texts))];
          static const char *const names[] = { "unset", "pass", "fail" };
          if (via_action)
            g_action_group_activate_action (actions, "set-flags",
                                            g_variant_new ("(sbs)", names[review], artifact,
                                                           reason));
          else
            cs_annotation_set_flags (doc, review, artifact, reason);
          m.review = review;
          m.artifact = artifact;
          m.reason = reason;
        }
      else if (op == 10)
        {
          if (g_rand_boolean (rand))
            {
              const char *note = texts[g_rand_int_range (rand, 0, G_N_ELEMENTS (texts))];
              if (via_action)
                g_action_group_activate_action (actions, "set-note", g_variant_new_string (note));
              else
                cs_annotation_set_note (doc, note);
              m.note = note;
            }
          else
            {
              guint n = g_rand_boolean (rand) ? 0 : (guint) g_rand_int_range (rand, 2, 8);
              int cseed = g_rand_int_range (rand, 0, 3);
              double width = n ? 4 + g_rand_int_range (rand, 0, 2) : 0;
              CsCenterlinePoint points[8];
              centerline_points (cseed, n, points);
              if (via_action)
                {
                  GVariantBuilder b;
                  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ddd)"));
                  for (guint i = 0; i < n; i++)
                    g_variant_builder_add (&b, "(ddd)", points[i].voxel[0], points[i].voxel[1],
                                           points[i].voxel[2]);
                  g_action_group_activate_action (actions, "set-centerline",
                                                  g_variant_new ("(a(ddd)d)", &b, width));
                }
              else
                cs_annotation_set_centerline (doc, points, n, width);
              m.centerline_n = n;
              m.centerline_seed = cseed;
              m.width = width;
            }
        }
      else
        {
          if (via_action)
            g_action_group_activate_action (actions, "accept-model", NULL);
          else
            cs_annotation_accept_model_calls (doc);
          for (int i = 0; i < CS_N_SEGMENTS; i++)
            if (m.label[i] == CS_SEGMENT_LABEL_UNSET && calls[i] != CS_SEGMENT_LABEL_UNSET)
              {
                m.label[i] = calls[i];
                m.who[i] = w;
              }
        }
      if (!model_equal (&m, &g_array_index (history, Model, cur)))
        {
          g_array_set_size (history, cur + 1);
          g_array_append_val (history, m);
          cur++;
          n_changes++;
        }
      g_assert_cmpint (cs_annotation_can_redo (doc), ==, cur + 1 < history->len);
      check_against_model (doc, &g_array_index (history, Model, cur));
      if (check_disk && cs_annotation_can_undo (doc))
        {
          g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
          g_autofree char *on_disk = read_text (cs_annotation_get_path (doc));
          g_autofree char *in_memory = cs_annotation_to_json (doc);
          g_assert_cmpstr (on_disk, ==, in_memory);
        }
    }
  g_test_message ("seed %u: %u steps, %u changes, %u undos, %u redos", seed, n_steps,
                  n_changes, n_undo, n_redo);
  g_assert_cmpuint (n_undo, >, n_steps / 30);
  g_assert_cmpuint (n_redo, >, n_steps / 40);
  g_array_unref (history);
  g_rand_free (rand);
}

static void
test_undo_redo_random (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  for (guint32 seed = 1; seed <= 4; seed++)
    {
      g_autofree char *path = g_strdup_printf ("%s/s%u.cordscope.json", dir, seed);
      g_autoptr (CsAnnotation) doc = open_doc (path);
      cs_annotation_set_autosave (doc, FALSE);
      random_session (doc, seed, 4000, FALSE);
      g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_DIRTY);
      g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
    }
  cs_test_remove_tree (dir);
}

static void
test_autosave_every_change (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "auto.cordscope.json", NULL);
  g_autoptr (CsAnnotation) doc = open_doc (path);
  random_session (doc, 77, 400, TRUE);
  g_test_message ("%u saves", cs_annotation_get_save_count (doc));
  g_assert_cmpuint (cs_annotation_get_save_count (doc), >, 100);
  /* The previous version is kept, and it is a readable sidecar too. */
  g_autofree char *bak = g_strconcat (path, ".bak", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSidecar) previous = cs_sidecar_load (bak, &error);
  g_assert_no_error (error);
  cs_test_remove_tree (dir);
}

/* ---- round trip ------------------------------------------------------------------- */

static void
fill_every_field (CsAnnotation *doc)
{
  cs_annotation_set_annotator (doc, "Zoë O'Neil");
  g_assert_true (cs_annotation_set_segment_label (doc, 0, CS_SEGMENT_LABEL_NORMAL));
  g_assert_true (cs_annotation_set_segment_label (doc, 2, CS_SEGMENT_LABEL_HYPERINTENSE));
  cs_annotation_set_annotator (doc, "mk");
  g_assert_true (cs_annotation_set_segment_label (doc, 5, CS_SEGMENT_LABEL_UNCERTAIN));
  double v1[3] = { 4, 61.25, 7.5 }, v2[3] = { 4, 12, 7 };
  g_assert_true (cs_annotation_place_disc (doc, 3, v1));
  g_assert_true (cs_annotation_place_disc (doc, 8, v2));
  CsDisc file_disc = { .value = 6, .voxel = { 4, 30, 7 }, .source = CS_DISC_SOURCE_FILE };
  g_autoptr (GArray) file = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  g_array_append_val (file, file_disc);
  cs_annotation_set_file_discs (doc, file);
  g_assert_true (cs_annotation_delete_disc (doc, 6));
  g_assert_true (cs_annotation_set_flags (doc, CS_REVIEW_FAIL, TRUE,
                                          "motion, \"ghosting\"\nat C5"));
  g_assert_true (cs_annotation_set_note (doc, "line 1\nline 2, with \"quotes\" and ünïcode"));
  CsCenterlinePoint points[3] = { { { 4, 70, 7 } }, { { 4.5, 40, 7.25 } }, { { 4, 10, 7 } } };
  g_assert_true (cs_annotation_set_centerline (doc, points, 3, 6.5));
}

static void
test_round_trip (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "rt.cordscope.json", NULL);
  g_autoptr (CsAnnotation) doc = open_doc (path);
  fill_every_field (doc);
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
  g_autofree char *first = cs_annotation_to_json (doc);

  g_autoptr (CsAnnotation) back = open_doc (path);
  g_autofree char *second = cs_annotation_to_json (back);
  g_assert_cmpstr (first, ==, second);
  const CsSidecar *s = cs_annotation_get_sidecar (back);
  g_assert_cmpstr (s->case_name, ==, "case-1");
  g_assert_cmpstr (s->image_file, ==, "case-1.nii.gz");
  g_assert_cmpstr (s->annotator, ==, "mk");
  g_assert_nonnull (s->created);
  g_assert_nonnull (s->modified);
  g_assert_cmpint (s->segments[0].label, ==, CS_SEGMENT_LABEL_NORMAL);
  g_assert_cmpstr (s->segments[0].annotator, ==, "Zoë O'Neil");
  g_assert_cmpint (s->segments[2].label, ==, CS_SEGMENT_LABEL_HYPERINTENSE);
  g_assert_cmpint (s->segments[5].label, ==, CS_SEGMENT_LABEL_UNCERTAIN);
  g_assert_cmpstr (s->segments[5].annotator, ==, "mk");
  g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (s->segments[5].time, NULL);
  g_assert_nonnull (t);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_assert_cmpint (llabs (g_date_time_difference (now, t)), <, 60 * G_TIME_SPAN_SECOND);
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    if (i != 0 && i != 2 && i != 5)
      {
        g_assert_cmpint (s->segments[i].label, ==, CS_SEGMENT_LABEL_UNSET);
        g_assert_null (s->segments[i].annotator);
        g_assert_null (s->segments[i].time);
      }
  g_assert_cmpuint (s->discs->len, ==, 2);
  g_assert_cmpint (g_array_index (s->discs, CsDisc, 0).value, ==, 3);
  g_assert_cmpfloat (g_array_index (s->discs, CsDisc, 0).voxel[1], ==, 61.25);
  g_assert_cmpint (g_array_index (s->discs, CsDisc, 0).source, ==, CS_DISC_SOURCE_MANUAL);
  g_assert_cmpint (g_array_index (s->discs, CsDisc, 1).value, ==, 8);
  g_assert_true (cs_annotation_disc_removed (back, 6));
  g_assert_false (cs_annotation_disc_removed (back, 5));
  g_assert_cmpint (s->review, ==, CS_REVIEW_FAIL);
  g_assert_true (s->artifact);
  g_assert_cmpstr (s->flag_reason, ==, "motion, \"ghosting\"\nat C5");
  g_assert_cmpstr (s->note, ==, "line 1\nline 2, with \"quotes\" and ünïcode");
  g_assert_cmpuint (s->centerline->len, ==, 3);
  g_assert_cmpfloat (g_array_index (s->centerline, CsCenterlinePoint, 1).voxel[2], ==, 7.25);
  g_assert_cmpfloat (cs_annotation_get_centerline_width (back), ==, 6.5);

  /* A plain schema-v1 reader reads the same file (the extensions are extra keys). */
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSidecar) plain = cs_sidecar_load (path, &error);
  g_assert_no_error (error);
  g_autofree char *a = cs_sidecar_to_json (plain);
  g_autofree char *b = cs_sidecar_to_json (s);
  g_assert_cmpstr (a, ==, b);
  cs_test_remove_tree (dir);
}

static void
test_open_errors (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "bad.cordscope.json", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, "{\"schema_version\": 1, \"centerline_width\": -2}",
                                      -1, NULL));
  g_assert_null (cs_annotation_open (path, "bad", "bad.nii.gz", &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "centerline_width"));
  g_clear_error (&error);
  g_assert_true (g_file_set_contents (path, "{\"schema_version\": 1, \"discs_removed\": [40]}",
                                      -1, NULL));
  g_assert_null (cs_annotation_open (path, "bad", "bad.nii.gz", &error));
  g_assert_nonnull (strstr (error->message, "discs_removed"));
  g_clear_error (&error);
  /* A corrupt file names itself, and the backup when there is one. */
  g_assert_true (g_file_set_contents (path, "{\"schema_vers", -1, NULL));
  g_autofree char *bak = g_strconcat (path, ".bak", NULL);
  g_assert_true (g_file_set_contents (bak, "{\"schema_version\": 1}", -1, NULL));
  g_assert_null (cs_annotation_open (path, "bad", "bad.nii.gz", &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, bak));
  cs_test_remove_tree (dir);
}

/* ---- failed saves and recovery ---------------------------------------------------- */

static void
count_notify (GObject *object, GParamSpec *pspec, gpointer data)
{
  (*(guint *) data)++;
}

static void
test_read_only_folder (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "ro.cordscope.json", NULL);
  g_autoptr (CsAnnotation) doc = open_doc (path);
  cs_annotation_set_annotator (doc, "jd");
  g_assert_true (cs_annotation_set_segment_label (doc, 0, CS_SEGMENT_LABEL_NORMAL));
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
  g_autofree char *before = read_text (path);
  const char *recovery = cs_annotation_get_recovery_path (doc);
  g_assert_true (g_str_has_prefix (recovery, g_get_user_data_dir ()));
  g_assert_nonnull (strstr (recovery, "/cordscope/recovery/ro-"));
  g_assert_false (g_file_test (recovery, G_FILE_TEST_EXISTS));

  if (!cs_test_make_read_only (dir, TRUE, NULL))
    {
      g_test_skip ("cannot make a read-only folder here (no immutable flag, no chmod)");
      cs_test_remove_tree (dir);
      return;
    }
  guint state_notifications = 0;
  g_signal_connect (doc, "notify::save-state", G_CALLBACK (count_notify),
                    &state_notifications);
  gboolean changed = cs_annotation_set_segment_label (doc, 1, CS_SEGMENT_LABEL_HYPERINTENSE);
  g_assert_true (changed);
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_FAILED);
  g_assert_cmpuint (state_notifications, ==, 1);
  const char *message = cs_annotation_get_last_error (doc);
  g_test_message ("%s", message);
  g_assert_nonnull (strstr (message, path));
  g_assert_nonnull (strstr (message, recovery));
  /* In memory, in the recovery file; the sidecar untouched. */
  g_assert_cmpint (cs_annotation_get_sidecar (doc)->segments[1].label, ==,
                   CS_SEGMENT_LABEL_HYPERINTENSE);
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSidecar) kept = cs_sidecar_load (recovery, &error);
  g_assert_no_error (error);
  g_assert_cmpint (kept->segments[0].label, ==, CS_SEGMENT_LABEL_NORMAL);
  g_assert_cmpint (kept->segments[1].label, ==, CS_SEGMENT_LABEL_HYPERINTENSE);
  g_autofree char *during = read_text (path);
  g_assert_cmpstr (during, ==, before);

  /* More changes and an undo while failing: each one retried, each one recovered. */
  g_assert_true (cs_annotation_set_note (doc, "still read-only"));
  g_assert_true (cs_annotation_undo (doc));
  g_assert_true (cs_annotation_set_segment_label (doc, 2, CS_SEGMENT_LABEL_UNCERTAIN));
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_FAILED);
  g_autoptr (CsSidecar) kept2 = cs_sidecar_load (recovery, &error);
  g_assert_no_error (error);
  g_assert_cmpint (kept2->segments[2].label, ==, CS_SEGMENT_LABEL_UNCERTAIN);
  g_assert_cmpstr (kept2->note, ==, "");
  /* A retry on request fails the same way while the folder stays read-only. */
  g_action_group_activate_action (cs_annotation_get_action_group (doc), "save", NULL);
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_FAILED);

  g_assert_true (cs_test_make_read_only (dir, FALSE, NULL));
  g_assert_true (cs_annotation_save (doc, &error));
  g_assert_no_error (error);
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
  g_assert_null (cs_annotation_get_last_error (doc));
  g_assert_false (g_file_test (recovery, G_FILE_TEST_EXISTS));
  g_autoptr (CsSidecar) saved = cs_sidecar_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (saved->segments[0].label, ==, CS_SEGMENT_LABEL_NORMAL);
  g_assert_cmpint (saved->segments[1].label, ==, CS_SEGMENT_LABEL_HYPERINTENSE);
  g_assert_cmpint (saved->segments[2].label, ==, CS_SEGMENT_LABEL_UNCERTAIN);
  cs_test_remove_tree (dir);
}

/* A full disk (a file-size limit, which binds root too) fails the sidecar and the recovery
 * copy alike: the state says both, and nothing is lost from memory. */
static void
test_full_disk (void)
{
  if (g_test_subprocess ())
    {
      g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
      g_autofree char *path = g_build_filename (dir, "full.cordscope.json", NULL);
      g_autoptr (CsAnnotation) doc = open_doc (path);
      g_assert_true (cs_annotation_set_segment_label (doc, 3, CS_SEGMENT_LABEL_NORMAL));
      g_autofree char *before = read_text (path);
      struct rlimit limit = { 4096, 4096 };
      signal (SIGXFSZ, SIG_IGN);
      g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);
      g_autofree char *big = g_strnfill (16 * 1024, 'x');
      g_assert_true (cs_annotation_set_note (doc, big));
      g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_FAILED);
      g_printerr ("%s\n", cs_annotation_get_last_error (doc));
      g_assert_cmpstr (cs_annotation_get_sidecar (doc)->note, ==, big);
      g_autofree char *after = read_text (path);
      g_assert_cmpstr (after, ==, before);
      /* Room again (a smaller note): the next change saves everything. */
      g_assert_true (cs_annotation_set_segment_label (doc, 4, CS_SEGMENT_LABEL_UNCERTAIN));
      g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_FAILED);
      g_assert_true (cs_annotation_set_note (doc, "short"));
      g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
      g_autoptr (GError) error = NULL;
      g_autoptr (CsSidecar) saved = cs_sidecar_load (path, &error);
      g_assert_no_error (error);
      g_assert_cmpint (saved->segments[4].label, ==, CS_SEGMENT_LABEL_UNCERTAIN);
      g_assert_cmpstr (saved->note, ==, "short");
      cs_test_remove_tree (dir);
      return;
    }
  g_test_trap_subprocess (NULL, 0, 0);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*full.cordscope.json*recovery copy failed too*");
}

static void
set_mtime (const char *path, gint64 seconds_from_now)
{
  struct timespec times[2];
  clock_gettime (CLOCK_REALTIME, &times[0]);
  times[0].tv_sec += seconds_from_now;
  times[1] = times[0];
  g_assert_cmpint (utimensat (AT_FDCWD, path, times, 0), ==, 0);
}

static void
test_recovery_on_open (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "rec.cordscope.json", NULL);
  g_autofree char *recovery = cs_annotation_recovery_path_for (path);
  {
    g_autoptr (CsAnnotation) doc = open_doc (path);
    cs_annotation_set_annotator (doc, "jd");
    cs_annotation_set_segment_label (doc, 0, CS_SEGMENT_LABEL_NORMAL);
    if (!cs_test_make_read_only (dir, TRUE, NULL))
      {
        g_test_skip ("cannot make a read-only folder here");
        cs_test_remove_tree (dir);
        return;
      }
    cs_annotation_set_segment_label (doc, 1, CS_SEGMENT_LABEL_HYPERINTENSE);
    double voxel[3] = { 1, 2, 3 };
    cs_annotation_place_disc (doc, 4, voxel);
    g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_FAILED);
    g_assert_true (cs_test_make_read_only (dir, FALSE, NULL));
    /* The app dies here: the document goes without another save. */
  }
  g_assert_true (g_file_test (recovery, G_FILE_TEST_EXISTS));
  /* No help with the file times: written after the sidecar, the recovery file is newer
   * (or, within one clock tick, as old but different). */

  g_autoptr (CsAnnotation) doc = open_doc (path);
  g_assert_cmpstr (cs_annotation_get_pending_recovery (doc), ==, recovery);
  GActionGroup *actions = cs_annotation_get_action_group (doc);
  g_assert_true (g_action_group_get_action_enabled (actions, "restore-recovery"));
  g_assert_cmpint (cs_annotation_get_sidecar (doc)->segments[1].label, ==,
                   CS_SEGMENT_LABEL_UNSET);
  g_action_group_activate_action (actions, "restore-recovery", NULL);
  g_assert_null (cs_annotation_get_pending_recovery (doc));
  g_assert_false (g_action_group_get_action_enabled (actions, "restore-recovery"));
  const CsSidecar *s = cs_annotation_get_sidecar (doc);
  g_assert_cmpint (s->segments[0].label, ==, CS_SEGMENT_LABEL_NORMAL);
  g_assert_cmpint (s->segments[1].label, ==, CS_SEGMENT_LABEL_HYPERINTENSE);
  g_assert_cmpstr (s->segments[1].annotator, ==, "jd");
  g_assert_cmpuint (s->discs->len, ==, 1);
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
  g_assert_false (g_file_test (recovery, G_FILE_TEST_EXISTS));
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSidecar) saved = cs_sidecar_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (saved->segments[1].label, ==, CS_SEGMENT_LABEL_HYPERINTENSE);
  /* The restore is one command. */
  g_assert_cmpstr (cs_annotation_get_undo_label (doc), ==, "Restore unsaved annotations");
  g_assert_true (cs_annotation_undo (doc));
  g_assert_cmpint (s->segments[1].label, ==, CS_SEGMENT_LABEL_UNSET);
  g_assert_cmpuint (cs_annotation_get_sidecar (doc)->discs->len, ==, 0);
  g_clear_object (&doc);

  /* A recovery file older than the sidecar is not offered. */
  g_assert_true (g_file_set_contents (recovery, "{\"schema_version\": 1, \"note\": \"old\"}",
                                      -1, NULL));
  set_mtime (recovery, -60);
  doc = open_doc (path);
  g_assert_null (cs_annotation_get_pending_recovery (doc));
  g_clear_object (&doc);

  /* Newer but unreadable: not offered either (a warning says why). */
  g_assert_true (g_file_set_contents (recovery, "{\"schema_vers", -1, NULL));
  set_mtime (recovery, 60);
  doc = open_doc (path);
  g_assert_null (cs_annotation_get_pending_recovery (doc));
  g_clear_object (&doc);

  /* With no sidecar at all, any readable recovery file is newer; discarding removes it. */
  g_assert_true (g_file_set_contents (recovery, "{\"schema_version\": 1, \"note\": \"n\"}",
                                      -1, NULL));
  g_unlink (path);
  doc = open_doc (path);
  g_assert_cmpstr (cs_annotation_get_pending_recovery (doc), ==, recovery);
  g_action_group_activate_action (cs_annotation_get_action_group (doc), "discard-recovery",
                                  NULL);
  g_assert_null (cs_annotation_get_pending_recovery (doc));
  g_assert_false (g_file_test (recovery, G_FILE_TEST_EXISTS));

  /* Equal file times (coarse clocks) count as newer only with other contents. */
  g_clear_object (&doc);
  doc = open_doc (path);
  cs_annotation_set_note (doc, "same");
  g_autofree char *text = cs_annotation_to_json (doc);
  g_assert_true (g_file_set_contents (recovery, text, -1, NULL));
  struct stat st;
  g_assert_cmpint (stat (path, &st), ==, 0);
  struct timespec times[2] = { st.st_mtim, st.st_mtim };
  g_assert_cmpint (utimensat (AT_FDCWD, recovery, times, 0), ==, 0);
  g_clear_object (&doc);
  doc = open_doc (path);
  g_assert_null (cs_annotation_get_pending_recovery (doc));
  g_clear_object (&doc);
  g_assert_true (g_file_set_contents (recovery, "{\"schema_version\": 1, \"note\": \"other\"}",
                                      -1, NULL));
  g_assert_cmpint (utimensat (AT_FDCWD, recovery, times, 0), ==, 0);
  doc = open_doc (path);
  g_assert_cmpstr (cs_annotation_get_pending_recovery (doc), ==, recovery);
  g_unlink (recovery);
  cs_test_remove_tree (dir);
}

/* ---- single behaviours ------------------------------------------------------------ */

static void
count_changes (CsAnnotation *doc, guint parts, gpointer data)
{
  ((guint *) data)[0]++;
  ((guint *) data)[1] |= parts;
}

static void
test_commands (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "cmd.cordscope.json", NULL);
  g_autoptr (CsAnnotation) doc = open_doc (path);
  guint seen[2] = { 0, 0 };
  g_signal_connect (doc, "changed", G_CALLBACK (count_changes), seen);
  GActionGroup *actions = cs_annotation_get_action_group (doc);
  g_assert_false (g_action_group_get_action_enabled (actions, "undo"));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));   /* nothing to save yet */

  cs_annotation_set_annotator (doc, "jd");
  g_action_group_activate_action (actions, "set-label", g_variant_new ("(is)", 1, "normal"));
  g_assert_cmpuint (seen[0], ==, 1);
  g_assert_cmpuint (seen[1], ==, CS_ANNOTATION_PART_SEGMENTS);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpstr (cs_annotation_get_undo_label (doc), ==, "Label C3-4 normal");
  /* The same label by the same person is no change: no command, no save. */
  guint saves = cs_annotation_get_save_count (doc);
  g_assert_false (cs_annotation_set_segment_label (doc, 1, CS_SEGMENT_LABEL_NORMAL));
  g_assert_cmpuint (cs_annotation_get_save_count (doc), ==, saves);
  g_assert_cmpuint (seen[0], ==, 1);
  /* ... by someone else it is (they now answer for it). */
  cs_annotation_set_annotator (doc, "mk");
  g_assert_true (cs_annotation_set_segment_label (doc, 1, CS_SEGMENT_LABEL_NORMAL));
  g_assert_cmpstr (cs_annotation_get_sidecar (doc)->segments[1].annotator, ==, "mk");
  g_assert_true (cs_annotation_undo (doc));
  g_assert_cmpstr (cs_annotation_get_sidecar (doc)->segments[1].annotator, ==, "jd");
  /* Clearing takes the label, its annotator and its time away; undo brings them back. */
  g_autofree char *stamped = g_strdup (cs_annotation_get_sidecar (doc)->segments[1].time);
  g_action_group_activate_action (actions, "clear-label", g_variant_new_int32 (1));
  g_assert_cmpint (cs_annotation_get_sidecar (doc)->segments[1].label, ==,
                   CS_SEGMENT_LABEL_UNSET);
  g_assert_null (cs_annotation_get_sidecar (doc)->segments[1].annotator);
  g_assert_null (cs_annotation_get_sidecar (doc)->segments[1].time);
  g_assert_cmpstr (cs_annotation_get_undo_label (doc), ==, "Clear the label of C3-4");
  g_action_group_activate_action (actions, "undo", NULL);
  g_assert_cmpint (cs_annotation_get_sidecar (doc)->segments[1].label, ==,
                   CS_SEGMENT_LABEL_NORMAL);
  g_assert_cmpstr (cs_annotation_get_sidecar (doc)->segments[1].time, ==, stamped);

  /* Accepting the model: unlabelled segments with a call, one command. */
  CsSegmentLabel calls[CS_N_SEGMENTS] = { CS_SEGMENT_LABEL_HYPERINTENSE,
    CS_SEGMENT_LABEL_HYPERINTENSE, CS_SEGMENT_LABEL_NORMAL, CS_SEGMENT_LABEL_UNSET,
    CS_SEGMENT_LABEL_NORMAL, CS_SEGMENT_LABEL_NORMAL };
  double scores[CS_N_SEGMENTS] = { 0.9, 0.8, 0.1, NAN, 0.2, 0.05 };
  cs_annotation_set_model_calls (doc, calls, scores);
  g_assert_cmpfloat (cs_annotation_get_model_score (doc, 0), ==, 0.9);
  g_action_group_activate_action (actions, "accept-model", NULL);
  const CsSidecar *s = cs_annotation_get_sidecar (doc);
  CsSegmentLabel expect[CS_N_SEGMENTS] = { CS_SEGMENT_LABEL_HYPERINTENSE,
    CS_SEGMENT_LABEL_NORMAL, CS_SEGMENT_LABEL_NORMAL, CS_SEGMENT_LABEL_UNSET,
    CS_SEGMENT_LABEL_NORMAL, CS_SEGMENT_LABEL_NORMAL };
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    g_assert_cmpint (s->segments[i].label, ==, expect[i]);
  g_assert_cmpstr (s->segments[0].annotator, ==, "mk");
  g_assert_cmpstr (cs_annotation_get_undo_label (doc), ==, "Accept the model's calls");
  g_action_group_activate_action (actions, "undo", NULL);
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    g_assert_cmpint (s->segments[i].label, ==, i == 1 ? CS_SEGMENT_LABEL_NORMAL
                                                      : CS_SEGMENT_LABEL_UNSET);
  g_assert_true (g_action_group_get_action_enabled (actions, "redo"));
  g_action_group_activate_action (actions, "redo", NULL);
  g_assert_cmpint (s->segments[5].label, ==, CS_SEGMENT_LABEL_NORMAL);
  /* Nothing left to accept: no command. */
  g_assert_false (cs_annotation_accept_model_calls (doc));

  /* Deleting a file disc hides it; placing it again brings the annotator's back. */
  CsDisc file_disc = { .value = 5, .voxel = { 2, 30, 4 }, .source = CS_DISC_SOURCE_FILE };
  g_autoptr (GArray) file = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  g_array_append_val (file, file_disc);
  cs_annotation_set_file_discs (doc, file);
  g_autoptr (GArray) d1 = cs_annotation_dup_discs (doc);
  g_assert_cmpuint (d1->len, ==, 1);
  seen[1] = 0;
  g_action_group_activate_action (actions, "delete-disc", g_variant_new_int32 (5));
  g_assert_cmpuint (seen[1], ==, CS_ANNOTATION_PART_DISCS);
  g_autoptr (GArray) d2 = cs_annotation_dup_discs (doc);
  g_assert_cmpuint (d2->len, ==, 0);
  g_action_group_activate_action (actions, "place-disc", g_variant_new ("(iddd)", 5, 2.0, 33.0,
                                                                         4.0));
  g_autoptr (GArray) d3 = cs_annotation_dup_discs (doc);
  g_assert_cmpuint (d3->len, ==, 1);
  g_assert_cmpfloat (g_array_index (d3, CsDisc, 0).voxel[1], ==, 33.0);
  g_assert_cmpint (g_array_index (d3, CsDisc, 0).source, ==, CS_DISC_SOURCE_MANUAL);
  g_assert_true (cs_annotation_undo (doc));
  g_assert_true (cs_annotation_undo (doc));
  g_autoptr (GArray) d4 = cs_annotation_dup_discs (doc);
  g_assert_cmpuint (d4->len, ==, 1);
  g_assert_cmpfloat (g_array_index (d4, CsDisc, 0).voxel[1], ==, 30.0);
  cs_test_remove_tree (dir);
}

/* Bad parameters through an action change nothing; each says why (a warning). */
static void
test_bad_action_parameters (void)
{
  if (g_test_subprocess ())
    {
      g_log_set_always_fatal (G_LOG_FATAL_MASK);   /* the warnings are the point here */
      g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
      g_autofree char *path = g_build_filename (dir, "bad.cordscope.json", NULL);
      g_autoptr (CsAnnotation) doc = open_doc (path);
      GActionGroup *actions = cs_annotation_get_action_group (doc);
      g_action_group_activate_action (actions, "set-note", g_variant_new_string ("kept"));
      g_autofree char *before = cs_annotation_to_json (doc);
      g_action_group_activate_action (actions, "set-label", g_variant_new ("(is)", 6, "normal"));
      g_action_group_activate_action (actions, "set-label", g_variant_new ("(is)", 0, "bright"));
      g_action_group_activate_action (actions, "clear-label", g_variant_new_int32 (-1));
      g_action_group_activate_action (actions, "place-disc",
                                      g_variant_new ("(iddd)", 0, 1.0, 2.0, 3.0));
      g_action_group_activate_action (actions, "place-disc",
                                      g_variant_new ("(iddd)", 3, NAN, 2.0, 3.0));
      g_action_group_activate_action (actions, "delete-disc", g_variant_new_int32 (26));
      g_action_group_activate_action (actions, "set-flags",
                                      g_variant_new ("(sbs)", "ok", FALSE, ""));
      GVariantBuilder b;
      g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ddd)"));
      g_variant_builder_add (&b, "(ddd)", 1.0, 2.0, 3.0);
      g_variant_builder_add (&b, "(ddd)", 1.0, 9.0, 3.0);
      g_action_group_activate_action (actions, "set-centerline",
                                      g_variant_new ("(a(ddd)d)", &b, 0.0));
      g_autofree char *after = cs_annotation_to_json (doc);
      g_assert_cmpstr (after, ==, before);
      g_assert_cmpstr (cs_annotation_get_undo_label (doc), ==, "Edit the note");
      cs_test_remove_tree (dir);
      return;
    }
  g_test_trap_subprocess (NULL, 0, 0);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*set-label: no segment 6*set-label: no segment 0 or no label "
                             "\"bright\"*clear-label*place-disc*place-disc*delete-disc*"
                             "set-flags: no review \"ok\"*set-centerline*");
}

static void
test_stale_temp_files (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "t.cordscope.json", NULL);
  g_autofree char *old_temp = g_build_filename (dir, ".t.cordscope.json.AbC123", NULL);
  g_autofree char *new_temp = g_build_filename (dir, ".t.cordscope.json.XyZ789", NULL);
  g_autofree char *other = g_build_filename (dir, ".t.cordscope.json.notmine", NULL);
  for (const char *const *p = (const char *const[]) { old_temp, new_temp, other, NULL }; *p; p++)
    g_assert_true (g_file_set_contents (*p, "{\"schema_ver", -1, NULL));
  set_mtime (old_temp, -60);
  set_mtime (other, -60);
  g_autoptr (CsAnnotation) doc = open_doc (path);
  g_assert_false (g_file_test (old_temp, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (new_temp, G_FILE_TEST_EXISTS));   /* a live writer's, maybe */
  g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
  cs_test_remove_tree (dir);
}

/* Iterates the main context until DOC's save state is STATE (or 10 s pass). */
static void
wait_for_state (CsAnnotation *doc, CsSaveState state)
{
  gint64 end = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
  while (cs_annotation_get_save_state (doc) != state && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, state);
}

static void
assert_main_thread (GObject *object, GParamSpec *pspec, gpointer main_thread)
{
  g_assert_true (g_thread_self () == main_thread);
}

static void
test_background_saves (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "bg.cordscope.json", NULL);
  g_autoptr (CsAnnotation) doc = open_doc (path);
  cs_annotation_set_save_in_background (doc, TRUE);
  /* The save state changes on the main thread only (widgets follow it). */
  g_signal_connect (doc, "notify::save-state", G_CALLBACK (assert_main_thread), g_thread_self ());
  g_signal_connect (doc, "notify::last-error", G_CALLBACK (assert_main_thread), g_thread_self ());
  random_session (doc, 91, 600, FALSE);
  /* Whatever the worker has not reached yet, flush writes. */
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_annotation_flush (doc, &error));
  g_assert_no_error (error);
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
  g_autofree char *on_disk = read_text (path);
  g_autofree char *in_memory = cs_annotation_to_json (doc);
  g_assert_cmpstr (on_disk, ==, in_memory);
  /* Late deliveries change nothing. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
  g_test_message ("%u background writes for 600 steps", cs_annotation_get_save_count (doc));

  /* One change: dirty at once, saved once the worker is done and the loop has run. */
  g_assert_true (cs_annotation_set_note (doc, "background"));
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_DIRTY);
  wait_for_state (doc, CS_SAVE_STATE_SAVED);
  g_autoptr (CsSidecar) saved = cs_sidecar_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (saved->note, ==, "background");

  /* A read-only folder: failed, kept in the recovery file; writable again: saved. */
  if (cs_test_make_read_only (dir, TRUE, NULL))
    {
      g_assert_true (cs_annotation_set_note (doc, "read-only"));
      wait_for_state (doc, CS_SAVE_STATE_FAILED);
      g_assert_nonnull (strstr (cs_annotation_get_last_error (doc), path));
      g_autoptr (CsSidecar) kept = cs_sidecar_load (cs_annotation_get_recovery_path (doc),
                                                    &error);
      g_assert_no_error (error);
      g_assert_cmpstr (kept->note, ==, "read-only");
      g_assert_true (cs_test_make_read_only (dir, FALSE, NULL));
      g_assert_true (cs_annotation_set_note (doc, "writable"));
      /* Failed stays on screen until the retry has succeeded. */
      g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_FAILED);
      wait_for_state (doc, CS_SAVE_STATE_SAVED);
      g_assert_false (g_file_test (cs_annotation_get_recovery_path (doc), G_FILE_TEST_EXISTS));
    }
  /* Autosave off: a change stays dirty; the save action writes in the background; a
   * change made while that write is under way keeps the document dirty. */
  cs_annotation_set_autosave (doc, FALSE);
  g_assert_true (cs_annotation_set_note (doc, "manual"));
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_DIRTY);
  g_action_group_activate_action (cs_annotation_get_action_group (doc), "save", NULL);
  wait_for_state (doc, CS_SAVE_STATE_SAVED);
  g_autoptr (CsSidecar) manual = cs_sidecar_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (manual->note, ==, "manual");
  cs_annotation_request_save (doc);
  g_assert_true (cs_annotation_set_note (doc, "after the request"));
  for (int i = 0; i < 50; i++)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (2000);
    }
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_DIRTY);
  g_assert_true (cs_annotation_flush (doc, &error));
  g_autoptr (CsSidecar) flushed = cs_sidecar_load (path, &error);
  g_assert_cmpstr (flushed->note, ==, "after the request");
  g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
  cs_annotation_set_save_in_background (doc, FALSE);
  cs_test_remove_tree (dir);
}

static void
sort_doubles (double *v, int n)
{
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--)
      {
        double t = v[j];
        v[j] = v[j - 1];
        v[j - 1] = t;
      }
}

/* The time an annotation action takes on the calling (main) thread with autosave, in
 * both modes: printed, and bounded generously since disks differ. */
static void
test_action_time (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  for (int background = 0; background <= 1; background++)
    {
      g_autofree char *path = g_strdup_printf ("%s/time%d.cordscope.json", dir, background);
      g_autoptr (CsAnnotation) doc = open_doc (path);
      cs_annotation_set_annotator (doc, "jd");
      cs_annotation_set_save_in_background (doc, background);
      GActionGroup *actions = cs_annotation_get_action_group (doc);
      enum { N = 120 };
      double ms[N];
      for (int i = 0; i < N; i++)
        {
          gint64 t0 = g_get_monotonic_time ();
          g_action_group_activate_action (actions, "set-label",
                                          g_variant_new ("(is)", i % CS_N_SEGMENTS,
                                                         (i / CS_N_SEGMENTS) % 2
                                                         ? "normal" : "hyperintense"));
          ms[i] = (g_get_monotonic_time () - t0) / 1000.0;
          if (background)
            g_main_context_iteration (NULL, FALSE);   /* the window's loop runs meanwhile */
          else
            g_assert_cmpint (cs_annotation_get_save_state (doc), ==, CS_SAVE_STATE_SAVED);
        }
      g_autoptr (GError) error = NULL;
      g_assert_true (cs_annotation_flush (doc, &error));
      sort_doubles (ms, N);
      const char *mode = background ? "background" : "in-thread";
      g_test_message ("label action, %s autosave: median %.3f ms, worst %.3f ms over %d",
                      mode, ms[N / 2], ms[N - 1], N);
      g_printerr ("label action, %s autosave: median %.3f ms, worst %.3f ms (%d actions)\n",
                  mode, ms[N / 2], ms[N - 1], N);
      g_assert_cmpfloat (ms[N / 2], <, background ? 20 : 500);
      if (background)
        cs_annotation_set_save_in_background (doc, FALSE);
    }
  cs_test_remove_tree (dir);
}

static void
test_next_disc (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "nd.cordscope.json", NULL);
  g_autoptr (CsAnnotation) doc = open_doc (path);
  g_assert_cmpint (cs_annotation_next_disc (doc), ==, 3);
  CsDisc file_disc = { .value = 3, .voxel = { 2, 10, 4 }, .source = CS_DISC_SOURCE_FILE };
  g_autoptr (GArray) file = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  g_array_append_val (file, file_disc);
  cs_annotation_set_file_discs (doc, file);
  g_assert_cmpint (cs_annotation_next_disc (doc), ==, 4);
  double v[3] = { 2, 20, 4 };
  for (int value = 4; value <= 8; value++)
    {
      g_assert_cmpint (cs_annotation_next_disc (doc), ==, value);
      v[1] += 8;
      cs_annotation_place_disc (doc, value, v);
    }
  g_assert_cmpint (cs_annotation_next_disc (doc), ==, 0);
  cs_annotation_delete_disc (doc, 3);
  g_assert_cmpint (cs_annotation_next_disc (doc), ==, 3);
  cs_annotation_delete_disc (doc, 6);
  g_assert_cmpint (cs_annotation_next_disc (doc), ==, 3);
  cs_test_remove_tree (dir);
}

/* Labels out through the dataset CSV and into another case's document: the same labels,
 * one undo step. */
static void
test_csv_into_document (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  g_autofree char *a_path = g_build_filename (dir, "a.cordscope.json", NULL);
  g_autofree char *b_path = g_build_filename (dir, "b.cordscope.json", NULL);
  g_autofree char *csv = g_build_filename (dir, "labels.csv", NULL);
  g_autoptr (CsAnnotation) a = open_doc (a_path);
  fill_every_field (a);
  g_autoptr (GPtrArray) cases = g_ptr_array_new_with_free_func ((GDestroyNotify)
                                                                 cs_export_case_free);
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSidecar) a_copy = cs_sidecar_load (a_path, &error);
  g_assert_no_error (error);
  g_ptr_array_add (cases, cs_export_case_new_full (g_steal_pointer (&a_copy), NULL));
  g_assert_true (cs_export_csv (cases, csv, &error));
  g_autoptr (GPtrArray) back = cs_import_csv (csv, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->len, ==, 1);

  g_autoptr (CsAnnotation) b = open_doc (b_path);
  g_assert_true (cs_annotation_import_labels (b, ((CsExportCase *) back->pdata[0])->sidecar));
  g_assert_false (cs_annotation_import_labels (b, ((CsExportCase *) back->pdata[0])->sidecar));
  const CsSidecar *sa = cs_annotation_get_sidecar (a), *sb = cs_annotation_get_sidecar (b);
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      g_assert_cmpint (sb->segments[i].label, ==, sa->segments[i].label);
      g_assert_cmpstr (sb->segments[i].annotator, ==, sa->segments[i].annotator);
      g_assert_cmpstr (sb->segments[i].time, ==, sa->segments[i].time);
    }
  g_assert_cmpint (sb->review, ==, sa->review);
  g_assert_cmpint (sb->artifact, ==, sa->artifact);
  g_assert_cmpstr (sb->flag_reason, ==, sa->flag_reason);
  g_assert_cmpstr (sb->note, ==, sa->note);
  g_assert_cmpstr (cs_annotation_get_undo_label (b), ==, "Import labels");
  g_assert_true (cs_annotation_undo (b));
  g_assert_cmpuint (cs_sidecar_n_labelled (sb), ==, 0);
  g_assert_false (cs_annotation_can_undo (b));
  cs_test_remove_tree (dir);
}

static void
test_worklist (void)
{
  CsSidecar *s[5];
  for (int i = 0; i < 5; i++)
    s[i] = cs_sidecar_new (NULL, NULL, NULL);
  /* 0: complete, agrees. 1: complete, one normal where the model says hyperintense.
   * 2: partly labelled, uncertain where the model says hyperintense (no disagreement).
   * 3: failed review. 4: artifact, nothing labelled. 5: no sidecar at all. */
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      cs_sidecar_set_segment (s[0], i, CS_SEGMENT_LABEL_NORMAL, "jd");
      cs_sidecar_set_segment (s[1], i, CS_SEGMENT_LABEL_NORMAL, "jd");
    }
  cs_sidecar_set_segment (s[2], 0, CS_SEGMENT_LABEL_UNCERTAIN, "jd");
  s[3]->review = CS_REVIEW_FAIL;
  s[4]->artifact = TRUE;
  CsWorklistItem items[6];
  memset (items, 0, sizeof items);
  double scores[6] = { 0.2, NAN, 0.9, 0.2, 0.5, NAN };
  for (int c = 0; c < 6; c++)
    {
      items[c].sidecar = c < 5 ? s[c] : NULL;
      items[c].patient_score = scores[c];
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        items[c].model_calls[i] = CS_SEGMENT_LABEL_NORMAL;
    }
  items[1].model_calls[3] = CS_SEGMENT_LABEL_HYPERINTENSE;
  items[2].model_calls[0] = CS_SEGMENT_LABEL_HYPERINTENSE;

  g_assert_cmpuint (cs_worklist_n_complete (items, 6), ==, 2);
  struct
  {
    CsWorklistFilter filter;
    gboolean by_score;
    const char *expect;
  } cases[] = {
    { CS_WORKLIST_ALL, FALSE, "0 1 2 3 4 5" },
    { CS_WORKLIST_ALL, TRUE, "2 4 0 3 1 5" },
    { CS_WORKLIST_UNLABELLED, FALSE, "2 3 4 5" },
    { CS_WORKLIST_UNLABELLED, TRUE, "2 4 3 5" },
    { CS_WORKLIST_DISAGREES, FALSE, "1" },
    { CS_WORKLIST_FLAGGED, TRUE, "4 3" },
  };
  for (guint k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      g_autoptr (GArray) order = cs_worklist_order (items, 6, cases[k].filter, cases[k].by_score);
      GString *got = g_string_new (NULL);
      for (guint i = 0; i < order->len; i++)
        g_string_append_printf (got, "%s%u", i ? " " : "", g_array_index (order, guint, i));
      g_assert_cmpstr (got->str, ==, cases[k].expect);
      g_string_free (got, TRUE);
    }
  for (int i = 0; i < 5; i++)
    cs_sidecar_free (s[i]);
}

/* A phantom without its `_seg`: the centerline drawn along its cord gives a mask that
 * overlaps the true cord; the annotator's disc edits reach the effective discs. */
static void
test_case_centerline_and_discs (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-annotation-XXXXXX");
  CsPhantomOptions options;
  cs_phantom_options_init (&options);
  options.size = CS_PHANTOM_SIZE_SMALL;
  g_autoptr (CsPhantomCase) pc = cs_phantom_case_generate (&options, 0);
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_phantom_case_write (pc, dir, &error));
  g_autofree char *seg_file = g_strdup_printf ("%s/%s_seg.nii.gz", dir, pc->name);
  g_assert_cmpint (g_unlink (seg_file), ==, 0);
  g_autoptr (GPtrArray) cases = cs_case_discover (dir, &error);
  g_assert_no_error (error);
  const CsCase *c = cases->pdata[0];
  g_assert_null (c->seg_path);
  g_autoptr (CsVolume) image = cs_volume_load (c->image_path, &error);
  g_assert_no_error (error);

  g_assert_null (cs_case_centerline_mask (c, image, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, c->sidecar_target));
  g_clear_error (&error);

  /* Six points on the true cord's centre line, width its median width. */
  int slice = cs_case_default_slice (image, pc->seg);
  g_autoptr (CsSagittal) seg = cs_volume_extract_sagittal (pc->seg, slice);
  int first = -1, last = -1;
  g_autoptr (GArray) widths = g_array_new (FALSE, FALSE, sizeof (float));
  for (int r = 0; r < seg->height; r++)
    {
      int n = 0;
      for (int col = 0; col < seg->width; col++)
        n += seg->data[r * seg->width + col] > 0.5;
      if (n == 0)
        continue;
      if (first < 0)
        first = r;
      last = r;
      float w = n * (float) seg->spacing[0];
      g_array_append_val (widths, w);
    }
  double width = cs_slice2d_percentile ((const float *) widths->data, widths->len, 50);
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ddd)"));
  for (int k = 0; k < 6; k++)
    {
      int r = first + 1 + k * (last - first - 2) / 5;
      double sum = 0, n = 0;
      for (int col = 0; col < seg->width; col++)
        if (seg->data[r * seg->width + col] > 0.5)
          sum += col, n++;
      double col = sum / n, v[3];
      for (int a = 0; a < 3; a++)
        v[a] = seg->px2vox[a][0] * col + seg->px2vox[a][1] * r + seg->px2vox[a][3];
      g_variant_builder_add (&b, "(ddd)", v[0], v[1], v[2]);
    }
  g_autoptr (CsAnnotation) doc = cs_annotation_open_case (c, &error);
  g_assert_no_error (error);
  GActionGroup *actions = cs_annotation_get_action_group (doc);
  g_action_group_activate_action (actions, "set-centerline",
                                  g_variant_new ("(a(ddd)d)", &b, width));

  g_autoptr (CsVolume) mask = cs_case_centerline_mask (c, image, &error);
  g_assert_no_error (error);
  g_autoptr (CsSagittal) got = cs_volume_extract_sagittal (mask, slice);
  double both = 0, in_mask = 0, in_seg = 0, total = 0;
  for (int p = 0; p < got->width * got->height; p++)
    {
      both += got->data[p] > 0 && seg->data[p] > 0.5;
      in_mask += got->data[p] > 0;
      in_seg += seg->data[p] > 0.5;
    }
  for (gsize p = 0; p < cs_volume_n_voxels (mask); p++)
    total += mask->data[p] > 0;
  double dice = 2 * both / (in_mask + in_seg);
  g_test_message ("centerline ROI vs the phantom's cord mask on slice %d: Dice %.3f "
                  "(%g vs %g pixels, width %.1f mm)", slice, dice, in_mask, in_seg, width);
  g_assert_cmpfloat (total, ==, in_mask);   /* only on the drawn slice */
  g_assert_cmpfloat (dice, >, 0.7);

  /* Drawn too wide (1.8 x), the image refinement cuts the CSF off again. */
  const CsSidecar *sc = cs_annotation_get_sidecar (doc);
  double dices[2];
  for (int refine = 0; refine <= 1; refine++)
    {
      g_autoptr (CsVolume) wide = cs_centerline_mask_volume (
        image, (const CsCenterlinePoint *) sc->centerline->data, sc->centerline->len,
        1.8 * width, refine, NULL, &error);
      g_assert_no_error (error);
      g_autoptr (CsSagittal) w = cs_volume_extract_sagittal (wide, slice);
      double wb = 0, wm = 0;
      for (int p = 0; p < w->width * w->height; p++)
        {
          wb += w->data[p] > 0 && seg->data[p] > 0.5;
          wm += w->data[p] > 0;
        }
      dices[refine] = 2 * wb / (wm + in_seg);
    }
  g_test_message ("1.8 x too wide: Dice %.3f plain, %.3f refined by the image", dices[0],
                  dices[1]);
  g_assert_cmpfloat (dices[1], >, dices[0] + 0.05);

  /* Discs: the file's, minus a deleted one, with a moved one. */
  g_autoptr (GArray) file = cs_discs_read (c->discs_path, CS_LABEL_FILE_DISCS, image, &error);
  g_assert_no_error (error);
  const CsDisc *d5 = NULL;
  for (guint i = 0; i < file->len; i++)
    if (g_array_index (file, CsDisc, i).value == 5)
      d5 = &g_array_index (file, CsDisc, i);
  g_assert_nonnull (d5);
  cs_annotation_set_file_discs (doc, file);
  g_action_group_activate_action (actions, "delete-disc", g_variant_new_int32 (4));
  g_action_group_activate_action (actions, "place-disc",
                                  g_variant_new ("(iddd)", 5, d5->voxel[0], d5->voxel[1] + 3,
                                                 d5->voxel[2]));
  g_autoptr (GArray) eff = cs_case_effective_discs (c, image, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (eff->len, ==, file->len - 1);
  for (guint i = 0; i < eff->len; i++)
    {
      const CsDisc *d = &g_array_index (eff, CsDisc, i);
      g_assert_cmpint (d->value, !=, 4);
      if (d->value == 5)
        g_assert_cmpfloat (d->voxel[1], ==, d5->voxel[1] + 3);
    }
  cs_test_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/annotation/undo-redo-random", test_undo_redo_random);
  g_test_add_func ("/annotation/autosave-every-change", test_autosave_every_change);
  g_test_add_func ("/annotation/round-trip", test_round_trip);
  g_test_add_func ("/annotation/open-errors", test_open_errors);
  g_test_add_func ("/annotation/read-only-folder", test_read_only_folder);
  g_test_add_func ("/annotation/full-disk", test_full_disk);
  g_test_add_func ("/annotation/recovery-on-open", test_recovery_on_open);
  g_test_add_func ("/annotation/commands", test_commands);
  g_test_add_func ("/annotation/bad-action-parameters", test_bad_action_parameters);
  g_test_add_func ("/annotation/stale-temp-files", test_stale_temp_files);
  g_test_add_func ("/annotation/background-saves", test_background_saves);
  g_test_add_func ("/annotation/action-time", test_action_time);
  g_test_add_func ("/annotation/next-disc", test_next_disc);
  g_test_add_func ("/annotation/csv-into-document", test_csv_into_document);
  g_test_add_func ("/annotation/worklist", test_worklist);
  g_test_add_func ("/annotation/case-centerline-and-discs", test_case_centerline_and_discs);
  return g_test_run ();
}
