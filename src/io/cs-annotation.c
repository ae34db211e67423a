/* cs-annotation.c: the annotation document: commands with undo/redo, autosave, recovery. */
#include "io/cs-annotation.h"
#include "io/cs-centerline.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DISC_VALUE 25

/* The state of some parts of the document: what a command restores on undo or redo. */
typedef struct
{
  guint parts;                                   /* CsAnnotationPart */
  CsSegmentAnnotation segments[CS_N_SEGMENTS];
  GArray *discs;                                 /* the annotator's CsDisc */
  guint32 discs_removed;                         /* bit v: disc value v deleted */
  CsReview review;
  gboolean artifact;
  char *reason;
  char *note;
  GArray *centerline;                            /* CsCenterlinePoint */
  double centerline_width;
} PartState;

typedef struct
{
  char *label;
  PartState before;
  PartState after;
} Command;

struct _CsAnnotation
{
  GObject parent_instance;

  char *path;
  char *recovery_path;
  CsSidecar *sidecar;
  guint32 discs_removed;
  double centerline_width;
  char *annotator;
  GArray *file_discs;
  CsSegmentLabel model_calls[CS_N_SEGMENTS];
  double model_scores[CS_N_SEGMENTS];

  GPtrArray *undo_stack;   /* Command*, newest last */
  GPtrArray *redo_stack;

  gboolean autosave;
  CsSaveState save_state;
  char *last_error;
  guint save_count;
  gboolean owns_recovery;  /* this document wrote (or restored) the recovery file; lock */
  guint64 change_seq;      /* changes so far */
  guint64 request_seq;     /* background writes requested so far */
  guint64 settled_request; /* the request whose outcome the save state shows */

  /* Background saving: one worker writes, in order; the newest text supersedes queued
   * older ones. Fields marked "lock" are shared with the worker. */
  GThreadPool *save_pool;
  GMainContext *save_context;
  GMutex lock;
  GCond idle;
  guint jobs_in_flight;    /* lock */
  guint64 enqueued_request; /* lock: the newest request handed to the worker */
  guint64 disk_seq;        /* lock: the newest change known to be in the sidecar */
  char *pending_recovery;
  CsSidecar *pending_sidecar;
  guint32 pending_removed;
  double pending_width;

  GSimpleActionGroup *actions;
};

enum
{
  PROP_0,
  PROP_SAVE_STATE,
  PROP_LAST_ERROR,
  PROP_CAN_UNDO,
  PROP_CAN_REDO,
  PROP_PENDING_RECOVERY,
  N_PROPS
};

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (CsAnnotation, cs_annotation, G_TYPE_OBJECT)

const char *
cs_save_state_to_string (CsSaveState state)
{
  switch (state)
    {
    case CS_SAVE_STATE_SAVED:
      return "saved";
    case CS_SAVE_STATE_DIRTY:
      return "dirty";
    case CS_SAVE_STATE_FAILED:
      return "failed";
    default:
      return "unknown";
    }
}

/* ---- part states ------------------------------------------------------------------ */

static GArray *
copy_array (const GArray *a, guint element_size)
{
  GArray *copy = g_array_sized_new (FALSE, TRUE, element_size, a ? a->len : 0);
  if (a != NULL && a->len > 0)
    g_array_append_vals (copy, a->data, a->len);
  return copy;
}

static void
segment_copy (CsSegmentAnnotation *dst, const CsSegmentAnnotation *src)
{
  dst->label = src->label;
  dst->annotator = g_strdup (src->annotator);
  dst->time = g_strdup (src->time);
}

static void
segment_clear (CsSegmentAnnotation *a)
{
  g_clear_pointer (&a->annotator, g_free);
  g_clear_pointer (&a->time, g_free);
  a->label = CS_SEGMENT_LABEL_UNSET;
}

static void
part_state_clear (PartState *st)
{
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    segment_clear (&st->segments[i]);
  g_clear_pointer (&st->discs, g_array_unref);
  g_clear_pointer (&st->reason, g_free);
  g_clear_pointer (&st->note, g_free);
  g_clear_pointer (&st->centerline, g_array_unref);
  st->parts = 0;
}

static void
part_state_capture (CsAnnotation *self, guint parts, PartState *st)
{
  const CsSidecar *s = self->sidecar;
  memset (st, 0, sizeof *st);
  st->parts = parts;
  if (parts & CS_ANNOTATION_PART_SEGMENTS)
    for (int i = 0; i < CS_N_SEGMENTS; i++)
      segment_copy (&st->segments[i], &s->segments[i]);
  if (parts & CS_ANNOTATION_PART_DISCS)
    {
      st->discs = copy_array (s->discs, sizeof (CsDisc));
      st->discs_removed = self->discs_removed;
    }
  if (parts & CS_ANNOTATION_PART_FLAGS)
    {
      st->review = s->review;
      st->artifact = s->artifact;
      st->reason = g_strdup (s->flag_reason ? s->flag_reason : "");
    }
  if (parts & CS_ANNOTATION_PART_NOTE)
    st->note = g_strdup (s->note ? s->note : "");
  if (parts & CS_ANNOTATION_PART_CENTERLINE)
    {
      st->centerline = copy_array (s->centerline, sizeof (CsCenterlinePoint));
      st->centerline_width = self->centerline_width;
    }
}

static void
part_state_restore (CsAnnotation *self, const PartState *st)
{
  CsSidecar *s = self->sidecar;
  if (st->parts & CS_ANNOTATION_PART_SEGMENTS)
    for (int i = 0; i < CS_N_SEGMENTS; i++)
      {
        segment_clear (&s->segments[i]);
        segment_copy (&s->segments[i], &st->segments[i]);
      }
  if (st->parts & CS_ANNOTATION_PART_DISCS)
    {
      g_array_unref (s->discs);
      s->discs = copy_array (st->discs, sizeof (CsDisc));
      self->discs_removed = st->discs_removed;
    }
  if (st->parts & CS_ANNOTATION_PART_FLAGS)
    {
      s->review = st->review;
      s->artifact = st->artifact;
      g_free (s->flag_reason);
      s->flag_reason = g_strdup (st->reason);
    }
  if (st->parts & CS_ANNOTATION_PART_NOTE)
    {
      g_free (s->note);
      s->note = g_strdup (st->note);
    }
  if (st->parts & CS_ANNOTATION_PART_CENTERLINE)
    {
      g_array_unref (s->centerline);
      s->centerline = copy_array (st->centerline, sizeof (CsCenterlinePoint));
      self->centerline_width = st->centerline_width;
    }
}

static gboolean
arrays_equal (const GArray *a, const GArray *b, guint element_size)
{
  /* An empty GArray may hold a NULL data pointer, which memcmp must not see. */
  return a->len == b->len
         && (a->len == 0 || memcmp (a->data, b->data, (gsize) a->len * element_size) == 0);
}

/* Equal for the user: segment times are not compared (a relabel to the same label by the
 * same person is no change). */
static gboolean
part_state_equal (const PartState *a, const PartState *b)
{
  g_assert (a->parts == b->parts);
  if (a->parts & CS_ANNOTATION_PART_SEGMENTS)
    for (int i = 0; i < CS_N_SEGMENTS; i++)
      if (a->segments[i].label != b->segments[i].label
          || g_strcmp0 (a->segments[i].annotator, b->segments[i].annotator) != 0)
        return FALSE;
  if ((a->parts & CS_ANNOTATION_PART_DISCS)
      && (a->discs_removed != b->discs_removed
          || !arrays_equal (a->discs, b->discs, sizeof (CsDisc))))
    return FALSE;
  if ((a->parts & CS_ANNOTATION_PART_FLAGS)
      && (a->review != b->review || a->artifact != b->artifact
          || g_strcmp0 (a->reason, b->reason) != 0))
    return FALSE;
  if ((a->parts & CS_ANNOTATION_PART_NOTE) && g_strcmp0 (a->note, b->note) != 0)
    return FALSE;
  if ((a->parts & CS_ANNOTATION_PART_CENTERLINE)
      && (a->centerline_width != b->centerline_width
          || !arrays_equal (a->centerline, b->centerline, sizeof (CsCenterlinePoint))))
    return FALSE;
  return TRUE;
}

static void
command_free (Command *c)
{
  g_free (c->label);
  part_state_clear (&c->before);
  part_state_clear (&c->after);
  g_free (c);
}

/* ---- saving ----------------------------------------------------------------------- */

char *
cs_annotation_recovery_path_for (const char *sidecar_path)
{
  g_autofree char *absolute = g_canonicalize_filename (sidecar_path, NULL);
  g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, absolute, -1);
  g_autofree char *base = g_path_get_basename (absolute);
  const char *suffix = ".cordscope.json";
  gsize n = strlen (base), m = strlen (suffix);
  if (n > m && strcmp (base + n - m, suffix) == 0)
    base[n - m] = '\0';
  /* The hash keeps two cases of the same name in different folders apart. */
  g_autofree char *name = g_strdup_printf ("%s-%.12s.cordscope.json", base, hash);
  return g_build_filename (g_get_user_data_dir (), "cordscope", "recovery", name, NULL);
}

static char *
document_json (CsAnnotation *self, const char *recovery_for)
{
  g_autofree char *text = cs_sidecar_to_json (self->sidecar);
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, -1, NULL))
    g_assert_not_reached ();
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  json_object_set_double_member (root, "centerline_width", self->centerline_width);
  JsonArray *removed = json_array_new ();
  for (int v = 1; v <= MAX_DISC_VALUE; v++)
    if (self->discs_removed & (1u << v))
      json_array_add_int_element (removed, v);
  json_object_set_array_member (root, "discs_removed", removed);
  if (recovery_for != NULL)
    json_object_set_string_member (root, "recovery_for", recovery_for);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, json_parser_get_root (parser));
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  g_autofree char *out = json_generator_to_data (gen, NULL);
  return g_strconcat (out, "\n", NULL);
}

char *
cs_annotation_to_json (CsAnnotation *self)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), NULL);
  return document_json (self, NULL);
}

static gboolean
write_failed (GError **error, const char *path, const char *what, int saved_errno)
{
  g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: %s: %s", path, what,
               g_strerror (saved_errno));
  return FALSE;
}

static void
set_save_state (CsAnnotation *self, CsSaveState state, const char *error_message)
{
  gboolean state_changed = self->save_state != state;
  gboolean error_changed = g_strcmp0 (self->last_error, error_message) != 0;
  self->save_state = state;
  if (error_changed)
    {
      g_free (self->last_error);
      self->last_error = g_strdup (error_message);
    }
  if (state_changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SAVE_STATE]);
  if (error_changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LAST_ERROR]);
}

/* TEXT with "recovery_for": the sidecar's absolute path (the recovery file names it). */
static char *
recovery_text (const char *text, const char *sidecar_path)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, -1, NULL))
    g_assert_not_reached ();
  g_autofree char *absolute = g_canonicalize_filename (sidecar_path, NULL);
  json_object_set_string_member (json_node_get_object (json_parser_get_root (parser)),
                                 "recovery_for", absolute);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, json_parser_get_root (parser));
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  g_autofree char *out = json_generator_to_data (gen, NULL);
  return g_strconcat (out, "\n", NULL);
}

/* Writes TEXT to the sidecar, else to the recovery file; *MESSAGE says why on failure.
 * Runs on the worker too: it reads only path and recovery_path, and owns_recovery under
 * the lock. */
static gboolean
write_document (CsAnnotation *self, const char *text, char **message)
{
  g_autoptr (GError) local = NULL;
  if (cs_sidecar_write_text (self->path, text, TRUE, &local))
    {
      g_mutex_lock (&self->lock);
      /* The sidecar holds everything the recovery file held. */
      if (self->owns_recovery && (g_unlink (self->recovery_path) == 0 || errno == ENOENT))
        self->owns_recovery = FALSE;
      g_mutex_unlock (&self->lock);
      return TRUE;
    }
  g_autoptr (GError) recovery_error = NULL;
  g_autofree char *dir = g_path_get_dirname (self->recovery_path);
  g_autofree char *copy = recovery_text (text, self->path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    write_failed (&recovery_error, dir, "cannot create the recovery folder", errno);
  else if (cs_sidecar_write_text (self->recovery_path, copy, FALSE, &recovery_error))
    {
      g_mutex_lock (&self->lock);
      self->owns_recovery = TRUE;
      g_mutex_unlock (&self->lock);
      *message = g_strdup_printf ("%s; the annotations are kept in %s", local->message,
                                  self->recovery_path);
      return FALSE;
    }
  *message = g_strdup_printf ("%s; the recovery copy failed too: %s", local->message,
                              recovery_error->message);
  return FALSE;
}

/* Waits until the worker has written (or dropped) every queued text. */
static void
wait_for_worker (CsAnnotation *self)
{
  g_mutex_lock (&self->lock);
  while (self->jobs_in_flight > 0)
    g_cond_wait (&self->idle, &self->lock);
  g_mutex_unlock (&self->lock);
}

static char *
stamped_text (CsAnnotation *self)
{
  g_free (self->sidecar->modified);
  self->sidecar->modified = cs_sidecar_now ();
  return document_json (self, NULL);
}

/* Writes the document now, on this thread. */
static gboolean
save_now (CsAnnotation *self, GError **error)
{
  g_autofree char *text = stamped_text (self);
  g_autofree char *message = NULL;
  /* Outcomes of background writes queued before this one no longer count. */
  self->settled_request = self->request_seq;
  if (write_document (self, text, &message))
    {
      self->save_count++;
      g_mutex_lock (&self->lock);
      self->disk_seq = self->change_seq;
      g_mutex_unlock (&self->lock);
      set_save_state (self, CS_SAVE_STATE_SAVED, NULL);
      return TRUE;
    }
  set_save_state (self, CS_SAVE_STATE_FAILED, message);
  g_set_error_literal (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, message);
  return FALSE;
}

gboolean
cs_annotation_save (CsAnnotation *self, GError **error)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  /* An older background write must not land after this one. */
  wait_for_worker (self);
  return save_now (self, error);
}

gboolean
cs_annotation_flush (CsAnnotation *self, GError **error)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  wait_for_worker (self);
  g_mutex_lock (&self->lock);
  gboolean on_disk = self->disk_seq == self->change_seq;
  g_mutex_unlock (&self->lock);
  if (!on_disk)
    return save_now (self, error);
  self->settled_request = self->request_seq;
  set_save_state (self, CS_SAVE_STATE_SAVED, NULL);
  return TRUE;
}

typedef struct
{
  CsAnnotation *self;   /* a reference */
  guint64 id;           /* request number */
  guint64 change;       /* the change it writes */
  char *text;
  gboolean written;     /* FALSE: superseded by a newer text before its turn */
  gboolean ok;
  char *message;
} SaveJob;

static void
save_job_free (gpointer data)
{
  SaveJob *job = data;
  g_free (job->text);
  g_free (job->message);
  g_object_unref (job->self);
  g_free (job);
}

/* On the document's main context: the save state follows the newest change's write. */
static gboolean
deliver_save (gpointer data)
{
  SaveJob *job = data;
  CsAnnotation *self = job->self;
  if (!job->written)
    return G_SOURCE_REMOVE;
  if (job->ok)
    self->save_count++;
  if (job->id != self->request_seq || job->id <= self->settled_request)
    return G_SOURCE_REMOVE;   /* a newer request (or a save since) will speak */
  self->settled_request = job->id;
  if (!job->ok)
    set_save_state (self, CS_SAVE_STATE_FAILED, job->message);
  else if (job->change == self->change_seq)
    set_save_state (self, CS_SAVE_STATE_SAVED, NULL);
  else
    set_save_state (self, CS_SAVE_STATE_DIRTY, NULL);   /* changed since it was queued */
  return G_SOURCE_REMOVE;
}

static void
save_worker (gpointer data, gpointer user_data)
{
  SaveJob *job = data;
  CsAnnotation *self = job->self;
  g_mutex_lock (&self->lock);
  gboolean superseded = job->id < self->enqueued_request;
  g_mutex_unlock (&self->lock);
  if (!superseded)
    {
      job->written = TRUE;
      job->ok = write_document (self, job->text, &job->message);
      if (job->ok)
        {
          g_mutex_lock (&self->lock);
          self->disk_seq = MAX (self->disk_seq, job->change);
          g_mutex_unlock (&self->lock);
        }
    }
  /* Always a source, never g_main_context_invoke(): that may run the callback right here
   * on the worker when the context happens to be free. */
  GSource *source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, deliver_save, job, save_job_free);
  g_source_set_static_name (source, "[cordscope] annotation saved");
  g_source_attach (source, self->save_context);
  g_source_unref (source);
  g_mutex_lock (&self->lock);
  self->jobs_in_flight--;
  g_cond_broadcast (&self->idle);
  g_mutex_unlock (&self->lock);
}

static void
save_in_background (CsAnnotation *self)
{
  SaveJob *job = g_new0 (SaveJob, 1);
  job->self = g_object_ref (self);
  job->id = ++self->request_seq;
  job->change = self->change_seq;
  job->text = stamped_text (self);
  g_mutex_lock (&self->lock);
  self->enqueued_request = job->id;
  self->jobs_in_flight++;
  g_mutex_unlock (&self->lock);
  if (self->save_state != CS_SAVE_STATE_FAILED)
    set_save_state (self, CS_SAVE_STATE_DIRTY, self->last_error);
  g_thread_pool_push (self->save_pool, job, NULL);
}

void
cs_annotation_request_save (CsAnnotation *self)
{
  g_return_if_fail (CS_IS_ANNOTATION (self));
  if (self->save_pool != NULL)
    save_in_background (self);
  else
    save_now (self, NULL);
}

void
cs_annotation_set_save_in_background (CsAnnotation *self, gboolean background)
{
  g_return_if_fail (CS_IS_ANNOTATION (self));
  if (background && self->save_pool == NULL)
    {
      self->save_context = g_main_context_ref_thread_default ();
      self->save_pool = g_thread_pool_new (save_worker, NULL, 1, FALSE, NULL);
    }
  else if (!background && self->save_pool != NULL)
    {
      wait_for_worker (self);
      g_thread_pool_free (self->save_pool, FALSE, TRUE);
      self->save_pool = NULL;
      g_clear_pointer (&self->save_context, g_main_context_unref);
    }
}

/* ---- commands --------------------------------------------------------------------- */

static void update_actions (CsAnnotation *self);

static void
changed (CsAnnotation *self, guint parts)
{
  self->change_seq++;
  /* With autosave in this thread the state goes straight to saved or failed. */
  if (self->autosave && self->save_pool != NULL)
    save_in_background (self);
  else if (self->autosave)
    save_now (self, NULL);
  else if (self->save_state != CS_SAVE_STATE_FAILED)
    set_save_state (self, CS_SAVE_STATE_DIRTY, self->last_error);
  update_actions (self);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0, parts);
}

static void
notify_stacks (CsAnnotation *self, gboolean could_undo, gboolean could_redo)
{
  if (could_undo != cs_annotation_can_undo (self))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CAN_UNDO]);
  if (could_redo != cs_annotation_can_redo (self))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CAN_REDO]);
}

/* Records COMMAND (its before state already captured, the document already changed):
 * captures the after state; drops it when nothing changed. */
static gboolean
commit (CsAnnotation *self, Command *command)
{
  part_state_capture (self, command->before.parts, &command->after);
  if (part_state_equal (&command->before, &command->after))
    {
      /* Not even a new time stamp: the document stays exactly as it was. */
      part_state_restore (self, &command->before);
      command_free (command);
      return FALSE;
    }
  gboolean could_undo = cs_annotation_can_undo (self);
  gboolean could_redo = cs_annotation_can_redo (self);
  g_ptr_array_add (self->undo_stack, command);
  g_ptr_array_set_size (self->redo_stack, 0);
  if (self->annotator != NULL && *self->annotator != '\0')
    {
      /* The file's annotator is whoever changed it last. */
      g_free (self->sidecar->annotator);
      self->sidecar->annotator = g_strdup (self->annotator);
    }
  notify_stacks (self, could_undo, could_redo);
  changed (self, command->before.parts);
  return TRUE;
}

static Command *
begin (CsAnnotation *self, guint parts, char *label)
{
  Command *c = g_new0 (Command, 1);
  c->label = label;
  part_state_capture (self, parts, &c->before);
  return c;
}

static void
stamp_segment (CsAnnotation *self, int segment, CsSegmentLabel label)
{
  /* An unset segment has no author: its annotator and time go too. */
  if (label == CS_SEGMENT_LABEL_UNSET)
    segment_clear (&self->sidecar->segments[segment]);
  else
    cs_sidecar_set_segment (self->sidecar, segment, label,
                            self->annotator && *self->annotator ? self->annotator : NULL);
}

gboolean
cs_annotation_set_segment_label (CsAnnotation *self, int segment, CsSegmentLabel label)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  g_return_val_if_fail (segment >= 0 && segment < CS_N_SEGMENTS, FALSE);
  g_return_val_if_fail (label >= CS_SEGMENT_LABEL_UNSET && label <= CS_SEGMENT_LABEL_UNCERTAIN,
                        FALSE);
  const char *name = cs_segment_name (CS_SEGMENT_FIRST_DISC + segment);
  char *text = label == CS_SEGMENT_LABEL_UNSET
    ? g_strdup_printf ("Clear the label of %s", name)
    : g_strdup_printf ("Label %s %s", name, cs_segment_label_to_string (label));
  Command *c = begin (self, CS_ANNOTATION_PART_SEGMENTS, text);
  stamp_segment (self, segment, label);
  return commit (self, c);
}

gboolean
cs_annotation_clear_segment_label (CsAnnotation *self, int segment)
{
  return cs_annotation_set_segment_label (self, segment, CS_SEGMENT_LABEL_UNSET);
}

gboolean
cs_annotation_place_disc (CsAnnotation *self, int value, const double voxel[3])
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  g_return_val_if_fail (value >= 1 && value <= MAX_DISC_VALUE, FALSE);
  g_return_val_if_fail (voxel != NULL && isfinite (voxel[0]) && isfinite (voxel[1])
                        && isfinite (voxel[2]), FALSE);
  Command *c = begin (self, CS_ANNOTATION_PART_DISCS,
                      g_strdup_printf ("Place disc %s", cs_disc_name (value)));
  CsDisc disc = { .value = value, .source = CS_DISC_SOURCE_MANUAL };
  memcpy (disc.voxel, voxel, sizeof disc.voxel);
  cs_sidecar_set_disc (self->sidecar, &disc);
  self->discs_removed &= ~(1u << value);
  return commit (self, c);
}

gboolean
cs_annotation_delete_disc (CsAnnotation *self, int value)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  g_return_val_if_fail (value >= 1 && value <= MAX_DISC_VALUE, FALSE);
  gboolean in_file = FALSE;
  for (guint i = 0; self->file_discs != NULL && i < self->file_discs->len; i++)
    in_file |= g_array_index (self->file_discs, CsDisc, i).value == value;
  Command *c = begin (self, CS_ANNOTATION_PART_DISCS,
                      g_strdup_printf ("Delete disc %s", cs_disc_name (value)));
  for (guint i = 0; i < self->sidecar->discs->len; i++)
    if (g_array_index (self->sidecar->discs, CsDisc, i).value == value)
      {
        g_array_remove_index (self->sidecar->discs, i);
        break;
      }
  /* Only a file disc needs remembering: the annotator's own is simply gone. */
  if (in_file)
    self->discs_removed |= 1u << value;
  return commit (self, c);
}

gboolean
cs_annotation_set_flags (CsAnnotation *self, CsReview review, gboolean artifact,
                         const char *reason)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  g_return_val_if_fail (review >= CS_REVIEW_UNSET && review <= CS_REVIEW_FAIL, FALSE);
  static const char *const names[] = { "unset", "pass", "fail" };
  Command *c = begin (self, CS_ANNOTATION_PART_FLAGS,
                      g_strdup_printf ("Flag the case %s%s", names[review],
                                       artifact ? ", artifact" : ""));
  self->sidecar->review = review;
  self->sidecar->artifact = artifact != FALSE;
  g_free (self->sidecar->flag_reason);
  self->sidecar->flag_reason = g_strdup (reason ? reason : "");
  return commit (self, c);
}

gboolean
cs_annotation_set_note (CsAnnotation *self, const char *note)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  Command *c = begin (self, CS_ANNOTATION_PART_NOTE, g_strdup ("Edit the note"));
  g_free (self->sidecar->note);
  self->sidecar->note = g_strdup (note ? note : "");
  return commit (self, c);
}

gboolean
cs_annotation_set_centerline (CsAnnotation *self, const CsCenterlinePoint *points,
                              guint n_points, double width_mm)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  g_return_val_if_fail (n_points == 0 || points != NULL, FALSE);
  g_return_val_if_fail (isfinite (width_mm) && width_mm >= 0
                        && (width_mm > 0 || n_points == 0), FALSE);
  for (guint i = 0; i < n_points; i++)
    for (int a = 0; a < 3; a++)
      g_return_val_if_fail (isfinite (points[i].voxel[a]), FALSE);
  Command *c = begin (self, CS_ANNOTATION_PART_CENTERLINE,
                      g_strdup (n_points ? "Draw the centerline" : "Remove the centerline"));
  g_array_set_size (self->sidecar->centerline, 0);
  g_array_append_vals (self->sidecar->centerline, points, n_points);
  self->centerline_width = width_mm;
  return commit (self, c);
}

gboolean
cs_annotation_accept_model_calls (CsAnnotation *self)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  Command *c = begin (self, CS_ANNOTATION_PART_SEGMENTS, g_strdup ("Accept the model's calls"));
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    if (self->sidecar->segments[i].label == CS_SEGMENT_LABEL_UNSET
        && self->model_calls[i] != CS_SEGMENT_LABEL_UNSET)
      stamp_segment (self, i, self->model_calls[i]);
  return commit (self, c);
}

gboolean
cs_annotation_can_undo (CsAnnotation *self)
{
  return self->undo_stack->len > 0;
}

gboolean
cs_annotation_can_redo (CsAnnotation *self)
{
  return self->redo_stack->len > 0;
}

/* Moves the newest command of FROM to TO, restoring its before (undo) or after state. */
static gboolean
step (CsAnnotation *self, GPtrArray *from, GPtrArray *to, gboolean undo)
{
  if (from->len == 0)
    return FALSE;
  gboolean could_undo = cs_annotation_can_undo (self);
  gboolean could_redo = cs_annotation_can_redo (self);
  Command *c = g_ptr_array_steal_index (from, from->len - 1);
  part_state_restore (self, undo ? &c->before : &c->after);
  g_ptr_array_add (to, c);
  notify_stacks (self, could_undo, could_redo);
  changed (self, c->before.parts);
  return TRUE;
}

gboolean
cs_annotation_undo (CsAnnotation *self)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  return step (self, self->undo_stack, self->redo_stack, TRUE);
}

gboolean
cs_annotation_redo (CsAnnotation *self)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  return step (self, self->redo_stack, self->undo_stack, FALSE);
}

const char *
cs_annotation_get_undo_label (CsAnnotation *self)
{
  GPtrArray *a = self->undo_stack;
  return a->len ? ((Command *) a->pdata[a->len - 1])->label : NULL;
}

const char *
cs_annotation_get_redo_label (CsAnnotation *self)
{
  GPtrArray *a = self->redo_stack;
  return a->len ? ((Command *) a->pdata[a->len - 1])->label : NULL;
}

/* ---- accessors -------------------------------------------------------------------- */

const char *
cs_annotation_get_path (CsAnnotation *self)
{
  return self->path;
}

const CsSidecar *
cs_annotation_get_sidecar (CsAnnotation *self)
{
  return self->sidecar;
}

void
cs_annotation_set_annotator (CsAnnotation *self, const char *annotator)
{
  g_return_if_fail (CS_IS_ANNOTATION (self));
  g_free (self->annotator);
  self->annotator = g_strdup (annotator);
}

const char *
cs_annotation_get_annotator (CsAnnotation *self)
{
  return self->annotator;
}

void
cs_annotation_set_file_discs (CsAnnotation *self, const GArray *discs)
{
  g_return_if_fail (CS_IS_ANNOTATION (self));
  g_clear_pointer (&self->file_discs, g_array_unref);
  if (discs != NULL)
    self->file_discs = copy_array (discs, sizeof (CsDisc));
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0, (guint) CS_ANNOTATION_PART_DISCS);
}

GArray *
cs_annotation_dup_discs (CsAnnotation *self)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), NULL);
  GArray *merged = cs_discs_merge (self->file_discs, self->sidecar->discs);
  for (guint i = merged->len; i-- > 0;)
    {
      const CsDisc *d = &g_array_index (merged, CsDisc, i);
      gboolean own = FALSE;
      for (guint j = 0; j < self->sidecar->discs->len; j++)
        own |= g_array_index (self->sidecar->discs, CsDisc, j).value == d->value;
      if (!own && d->value >= 1 && d->value <= MAX_DISC_VALUE
          && (self->discs_removed & (1u << d->value)))
        g_array_remove_index (merged, i);
    }
  return merged;
}

gboolean
cs_annotation_disc_removed (CsAnnotation *self, int value)
{
  return value >= 1 && value <= MAX_DISC_VALUE && (self->discs_removed & (1u << value));
}

double
cs_annotation_get_centerline_width (CsAnnotation *self)
{
  return self->centerline_width;
}

void
cs_annotation_set_model_calls (CsAnnotation *self, const CsSegmentLabel *calls,
                               const double *scores)
{
  g_return_if_fail (CS_IS_ANNOTATION (self));
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      self->model_calls[i] = calls ? calls[i] : CS_SEGMENT_LABEL_UNSET;
      self->model_scores[i] = scores ? scores[i] : NAN;
    }
  update_actions (self);
}

CsSegmentLabel
cs_annotation_get_model_call (CsAnnotation *self, int segment)
{
  g_return_val_if_fail (segment >= 0 && segment < CS_N_SEGMENTS, CS_SEGMENT_LABEL_UNSET);
  return self->model_calls[segment];
}

double
cs_annotation_get_model_score (CsAnnotation *self, int segment)
{
  g_return_val_if_fail (segment >= 0 && segment < CS_N_SEGMENTS, NAN);
  return self->model_scores[segment];
}

void
cs_annotation_set_autosave (CsAnnotation *self, gboolean autosave)
{
  self->autosave = autosave;
}

CsSaveState
cs_annotation_get_save_state (CsAnnotation *self)
{
  return self->save_state;
}

const char *
cs_annotation_get_last_error (CsAnnotation *self)
{
  return self->last_error;
}

guint
cs_annotation_get_save_count (CsAnnotation *self)
{
  return self->save_count;
}

const char *
cs_annotation_get_recovery_path (CsAnnotation *self)
{
  return self->recovery_path;
}

const char *
cs_annotation_get_pending_recovery (CsAnnotation *self)
{
  return self->pending_recovery;
}

/* ---- opening ---------------------------------------------------------------------- */

/* The extension keys of a document's JSON text (absent: 0 and no removed disc). */
static gboolean
read_extensions (const char *text, gsize length, const char *source, guint32 *removed,
                 double *width, GError **error)
{
  *removed = 0;
  *width = 0;
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, (gssize) length, NULL))
    return TRUE;   /* cs_sidecar_from_json() has already said why */
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonNode *w = json_object_get_member (root, "centerline_width");
  if (w != NULL && !JSON_NODE_HOLDS_NULL (w))
    {
      GType t = JSON_NODE_HOLDS_VALUE (w) ? json_node_get_value_type (w) : G_TYPE_INVALID;
      double value = t == G_TYPE_DOUBLE ? json_node_get_double (w)
        : t == G_TYPE_INT64 ? (double) json_node_get_int (w) : NAN;
      if (!isfinite (value) || value < 0)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: field \"centerline_width\": must be a number >= 0 (mm)", source);
          return FALSE;
        }
      *width = value;
    }
  JsonNode *r = json_object_get_member (root, "discs_removed");
  if (r != NULL && !JSON_NODE_HOLDS_NULL (r))
    {
      JsonArray *a = JSON_NODE_HOLDS_ARRAY (r) ? json_node_get_array (r) : NULL;
      for (guint i = 0; a != NULL && i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          gint64 v = JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_INT64
            ? json_node_get_int (e) : -1;
          if (v < 1 || v > MAX_DISC_VALUE)
            a = NULL;
          else
            *removed |= 1u << v;
        }
      if (a == NULL)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                       "%s: field \"discs_removed\": must be an array of disc values 1..%d",
                       source, MAX_DISC_VALUE);
          return FALSE;
        }
    }
  return TRUE;
}

static CsSidecar *
load_document (const char *path, guint32 *removed, double *width, GError **error)
{
  g_autofree char *text = NULL;
  gsize length = 0;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &text, &length, &local))
    {
      g_set_error_literal (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, local->message);
      return NULL;
    }
  g_autoptr (CsSidecar) s = cs_sidecar_from_json (text, (gssize) length, path, error);
  if (s == NULL || !read_extensions (text, length, path, removed, width, error))
    return NULL;
  return g_steal_pointer (&s);
}

/* Modification time in ns, or -1 when the file does not exist. */
static gint64
mtime_ns (const char *path)
{
  struct stat st;
  if (stat (path, &st) != 0)
    return -1;
  return (gint64) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* The annotation content of a sidecar, without its modified time. */
static char *
content_json (const CsSidecar *s, guint32 removed, double width)
{
  g_autofree char *original = cs_sidecar_to_json (s);
  g_autoptr (CsSidecar) copy = cs_sidecar_from_json (original, -1, NULL, NULL);
  g_free (copy->modified);
  copy->modified = NULL;
  g_autofree char *text = cs_sidecar_to_json (copy);
  return g_strdup_printf ("%s%u %.17g", text, removed, width);
}

static void
find_recovery (CsAnnotation *self)
{
  gint64 recovery_time = mtime_ns (self->recovery_path);
  if (recovery_time < 0)
    return;
  gint64 sidecar_time = mtime_ns (self->path);
  if (sidecar_time > recovery_time)
    return;
  g_autoptr (GError) error = NULL;
  guint32 removed;
  double width;
  g_autoptr (CsSidecar) r = load_document (self->recovery_path, &removed, &width, &error);
  if (r == NULL)
    {
      /* Not a programming error, and nothing the user could restore: a note in the log. */
      g_message ("Ignoring an unreadable recovery file: %s", error->message);
      return;
    }
  if (sidecar_time == recovery_time)
    {
      /* File times are coarse (a clock tick): at equal times only other contents count. */
      g_autofree char *a = content_json (r, removed, width);
      g_autofree char *b = content_json (self->sidecar, self->discs_removed,
                                         self->centerline_width);
      if (strcmp (a, b) == 0)
        return;
    }
  self->pending_sidecar = g_steal_pointer (&r);
  self->pending_removed = removed;
  self->pending_width = width;
  self->pending_recovery = g_strdup (self->recovery_path);
}

/* Removes temp files of earlier writes to PATH that a crash or a kill left behind
 * (".NAME.XXXXXX" beside it), when older than a few seconds: a live writer's is newer. */
static void
remove_stale_temp_files (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *prefix = g_strdup_printf (".%s.", base);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  gint64 now = g_get_real_time () * 1000;
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      if (!g_str_has_prefix (name, prefix) || strlen (name) != strlen (prefix) + 6)
        continue;
      g_autofree char *temp = g_build_filename (dir, name, NULL);
      gint64 t = mtime_ns (temp);
      if (t >= 0 && now - t > 10 * (gint64) 1000000000)
        g_unlink (temp);
    }
}

CsAnnotation *
cs_annotation_open (const char *sidecar_path, const char *case_name, const char *image_file,
                    GError **error)
{
  g_return_val_if_fail (sidecar_path != NULL, NULL);
  g_autoptr (CsSidecar) s = NULL;
  guint32 removed = 0;
  double width = 0;
  if (g_file_test (sidecar_path, G_FILE_TEST_EXISTS))
    {
      g_autoptr (GError) local = NULL;
      s = load_document (sidecar_path, &removed, &width, &local);
      if (s == NULL)
        {
          g_autofree char *bak = g_strconcat (sidecar_path, ".bak", NULL);
          if (g_file_test (bak, G_FILE_TEST_EXISTS))
            g_set_error (error, local->domain, local->code,
                         "%s (the previous version is in %s)", local->message, bak);
          else
            g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
    }
  else
    s = cs_sidecar_new (case_name, image_file, NULL);

  CsAnnotation *self = g_object_new (CS_TYPE_ANNOTATION, NULL);
  self->path = g_strdup (sidecar_path);
  self->recovery_path = cs_annotation_recovery_path_for (sidecar_path);
  self->sidecar = g_steal_pointer (&s);
  self->discs_removed = removed;
  self->centerline_width = width;
  remove_stale_temp_files (sidecar_path);
  find_recovery (self);
  update_actions (self);
  return self;
}

CsAnnotation *
cs_annotation_open_case (const CsCase *c, GError **error)
{
  g_return_val_if_fail (c != NULL && c->sidecar_target != NULL, NULL);
  g_autofree char *image = g_path_get_basename (c->image_path);
  return cs_annotation_open (c->sidecar_target, c->name, image, error);
}

static void
clear_pending (CsAnnotation *self)
{
  g_clear_pointer (&self->pending_recovery, g_free);
  g_clear_pointer (&self->pending_sidecar, cs_sidecar_free);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PENDING_RECOVERY]);
  update_actions (self);
}

gboolean
cs_annotation_restore_recovery (CsAnnotation *self, GError **error)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  if (self->pending_sidecar == NULL)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: no recovery file to restore",
                   self->path);
      return FALSE;
    }
  Command *c = begin (self, CS_ANNOTATION_PART_ALL, g_strdup ("Restore unsaved annotations"));
  CsSidecar *r = self->pending_sidecar;
  CsSidecar *s = self->sidecar;
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      segment_clear (&s->segments[i]);
      segment_copy (&s->segments[i], &r->segments[i]);
    }
  g_array_unref (s->discs);
  s->discs = copy_array (r->discs, sizeof (CsDisc));
  self->discs_removed = self->pending_removed;
  s->review = r->review;
  s->artifact = r->artifact;
  g_free (s->flag_reason);
  s->flag_reason = g_strdup (r->flag_reason);
  g_free (s->note);
  s->note = g_strdup (r->note);
  g_array_unref (s->centerline);
  s->centerline = copy_array (r->centerline, sizeof (CsCenterlinePoint));
  self->centerline_width = self->pending_width;
  /* From now on this document answers for the file: a good save removes it. */
  g_mutex_lock (&self->lock);
  self->owns_recovery = TRUE;
  g_mutex_unlock (&self->lock);
  clear_pending (self);
  if (!commit (self, c))
    {
      /* Nothing to restore after all: the file only held what the sidecar holds. */
      wait_for_worker (self);
      g_mutex_lock (&self->lock);
      if (g_unlink (self->recovery_path) == 0)
        self->owns_recovery = FALSE;
      g_mutex_unlock (&self->lock);
    }
  return TRUE;
}

gboolean
cs_annotation_discard_recovery (CsAnnotation *self, GError **error)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), FALSE);
  if (self->pending_recovery == NULL)
    return TRUE;
  if (g_unlink (self->pending_recovery) != 0 && errno != ENOENT)
    return write_failed (error, self->pending_recovery, "cannot remove the recovery file",
                         errno);
  clear_pending (self);
  return TRUE;
}

/* ---- next disc, import, worklist -------------------------------------------------- */

int
cs_annotation_next_disc (CsAnnotation *self)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), 0);
  g_autoptr (GArray) discs = cs_annotation_dup_discs (self);
  for (int v = CS_SEGMENT_FIRST_DISC; v <= CS_SEGMENT_LAST_DISC; v++)
    {
      gboolean have = FALSE;
      for (guint i = 0; i < discs->len; i++)
        have |= g_array_index (discs, CsDisc, i).value == v;
      if (!have)
        return v;
    }
  return 0;
}

gboolean
cs_annotation_import_labels (CsAnnotation *self, const CsSidecar *labels)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self) && labels != NULL, FALSE);
  Command *c = begin (self, CS_ANNOTATION_PART_SEGMENTS | CS_ANNOTATION_PART_FLAGS
                      | CS_ANNOTATION_PART_NOTE, g_strdup ("Import labels"));
  CsSidecar *s = self->sidecar;
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      segment_clear (&s->segments[i]);
      segment_copy (&s->segments[i], &labels->segments[i]);
    }
  s->review = labels->review;
  s->artifact = labels->artifact;
  g_free (s->flag_reason);
  s->flag_reason = g_strdup (labels->flag_reason ? labels->flag_reason : "");
  g_free (s->note);
  s->note = g_strdup (labels->note ? labels->note : "");
  return commit (self, c);
}

GArray *
cs_case_effective_discs (const CsCase *c, const CsVolume *image, GError **error)
{
  g_return_val_if_fail (c != NULL, NULL);
  g_autoptr (CsAnnotation) doc = cs_annotation_open_case (c, error);
  if (doc == NULL)
    return NULL;
  if (c->discs_path != NULL)
    {
      g_autoptr (GArray) file = cs_discs_read (c->discs_path, CS_LABEL_FILE_DISCS, image,
                                               error);
      if (file == NULL)
        return NULL;
      cs_annotation_set_file_discs (doc, file);
    }
  return cs_annotation_dup_discs (doc);
}

CsVolume *
cs_case_centerline_mask (const CsCase *c, const CsVolume *image, GError **error)
{
  g_return_val_if_fail (c != NULL && image != NULL, NULL);
  g_autoptr (CsAnnotation) doc = cs_annotation_open_case (c, error);
  if (doc == NULL)
    return NULL;
  const CsSidecar *s = cs_annotation_get_sidecar (doc);
  if (s->centerline->len < 2 || !(doc->centerline_width > 0))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: no cord mask (NAME_seg) and no centerline drawn for this case",
                   c->sidecar_target);
      return NULL;
    }
  return cs_centerline_mask_volume (image, (const CsCenterlinePoint *) s->centerline->data,
                                    s->centerline->len, doc->centerline_width, TRUE, NULL,
                                    error);
}

guint
cs_sidecar_n_labelled (const CsSidecar *s)
{
  guint n = 0;
  for (int i = 0; s != NULL && i < CS_N_SEGMENTS; i++)
    n += s->segments[i].label != CS_SEGMENT_LABEL_UNSET;
  return n;
}

gboolean
cs_worklist_item_matches (const CsWorklistItem *item, CsWorklistFilter filter)
{
  const CsSidecar *s = item->sidecar;
  switch (filter)
    {
    case CS_WORKLIST_ALL:
      return TRUE;
    case CS_WORKLIST_UNLABELLED:
      return cs_sidecar_n_labelled (s) < CS_N_SEGMENTS;
    case CS_WORKLIST_FLAGGED:
      return s != NULL && (s->review == CS_REVIEW_FAIL || s->artifact);
    case CS_WORKLIST_DISAGREES:
      for (int i = 0; s != NULL && i < CS_N_SEGMENTS; i++)
        {
          CsSegmentLabel label = s->segments[i].label, call = item->model_calls[i];
          /* Uncertain on either side is no disagreement: nobody committed. */
          gboolean decided = (label == CS_SEGMENT_LABEL_NORMAL
                              || label == CS_SEGMENT_LABEL_HYPERINTENSE)
            && (call == CS_SEGMENT_LABEL_NORMAL || call == CS_SEGMENT_LABEL_HYPERINTENSE);
          if (decided && label != call)
            return TRUE;
        }
      return FALSE;
    default:
      g_return_val_if_reached (FALSE);
    }
}

guint
cs_worklist_n_complete (const CsWorklistItem *items, guint n_items)
{
  guint n = 0;
  for (guint i = 0; i < n_items; i++)
    n += cs_sidecar_n_labelled (items[i].sidecar) == CS_N_SEGMENTS;
  return n;
}

static gint
compare_by_score (gconstpointer a, gconstpointer b, gpointer data)
{
  const CsWorklistItem *items = data;
  guint i = *(const guint *) a, j = *(const guint *) b;
  double x = items[i].patient_score, y = items[j].patient_score;
  gboolean has_x = isfinite (x), has_y = isfinite (y);
  if (has_x != has_y)
    return has_x ? -1 : 1;
  if (has_x && x != y)
    return x > y ? -1 : 1;
  return (i > j) - (i < j);
}

GArray *
cs_worklist_order (const CsWorklistItem *items, guint n_items, CsWorklistFilter filter,
                   gboolean by_score)
{
  GArray *order = g_array_new (FALSE, FALSE, sizeof (guint));
  for (guint i = 0; i < n_items; i++)
    if (cs_worklist_item_matches (&items[i], filter))
      g_array_append_val (order, i);
  if (by_score)
    g_array_sort_with_data (order, compare_by_score, (gpointer) items);
  return order;
}

/* ---- actions ---------------------------------------------------------------------- */

static void
enable (CsAnnotation *self, const char *name, gboolean enabled)
{
  GAction *a = g_action_map_lookup_action (G_ACTION_MAP (self->actions), name);
  g_simple_action_set_enabled (G_SIMPLE_ACTION (a), enabled);
}

static void
update_actions (CsAnnotation *self)
{
  if (self->actions == NULL)
    return;
  enable (self, "undo", cs_annotation_can_undo (self));
  enable (self, "redo", cs_annotation_can_redo (self));
  enable (self, "restore-recovery", self->pending_recovery != NULL);
  enable (self, "discard-recovery", self->pending_recovery != NULL);
}

static void
on_set_label (GSimpleAction *action, GVariant *param, gpointer data)
{
  gint32 segment;
  const char *name;
  g_variant_get (param, "(i&s)", &segment, &name);
  CsSegmentLabel label;
  if (segment < 0 || segment >= CS_N_SEGMENTS || !cs_segment_label_from_string (name, &label))
    {
      g_warning ("set-label: no segment %d or no label \"%s\"", segment, name);
      return;
    }
  cs_annotation_set_segment_label (data, segment, label);
}

static void
on_clear_label (GSimpleAction *action, GVariant *param, gpointer data)
{
  gint32 segment = g_variant_get_int32 (param);
  if (segment < 0 || segment >= CS_N_SEGMENTS)
    {
      g_warning ("clear-label: no segment %d", segment);
      return;
    }
  cs_annotation_clear_segment_label (data, segment);
}

static void
on_place_disc (GSimpleAction *action, GVariant *param, gpointer data)
{
  gint32 value;
  double voxel[3];
  g_variant_get (param, "(iddd)", &value, &voxel[0], &voxel[1], &voxel[2]);
  if (value < 1 || value > MAX_DISC_VALUE || !isfinite (voxel[0]) || !isfinite (voxel[1])
      || !isfinite (voxel[2]))
    {
      g_warning ("place-disc: no disc value %d or a point that is not finite", value);
      return;
    }
  cs_annotation_place_disc (data, value, voxel);
}

static void
on_delete_disc (GSimpleAction *action, GVariant *param, gpointer data)
{
  gint32 value = g_variant_get_int32 (param);
  if (value < 1 || value > MAX_DISC_VALUE)
    {
      g_warning ("delete-disc: no disc value %d", value);
      return;
    }
  cs_annotation_delete_disc (data, value);
}

static void
on_set_flags (GSimpleAction *action, GVariant *param, gpointer data)
{
  const char *review_name, *reason;
  gboolean artifact;
  g_variant_get (param, "(&sb&s)", &review_name, &artifact, &reason);
  static const char *const names[] = { "unset", "pass", "fail" };
  for (int r = 0; r < 3; r++)
    if (strcmp (review_name, names[r]) == 0)
      {
        cs_annotation_set_flags (data, (CsReview) r, artifact, reason);
        return;
      }
  g_warning ("set-flags: no review \"%s\" (pass, fail, unset)", review_name);
}

static void
on_set_note (GSimpleAction *action, GVariant *param, gpointer data)
{
  cs_annotation_set_note (data, g_variant_get_string (param, NULL));
}

static void
on_set_centerline (GSimpleAction *action, GVariant *param, gpointer data)
{
  g_autoptr (GVariantIter) iter = NULL;
  double width;
  g_variant_get (param, "(a(ddd)d)", &iter, &width);
  g_autoptr (GArray) points = g_array_new (FALSE, TRUE, sizeof (CsCenterlinePoint));
  CsCenterlinePoint p;
  gboolean finite = TRUE;
  while (g_variant_iter_next (iter, "(ddd)", &p.voxel[0], &p.voxel[1], &p.voxel[2]))
    {
      finite &= isfinite (p.voxel[0]) && isfinite (p.voxel[1]) && isfinite (p.voxel[2]);
      g_array_append_val (points, p);
    }
  if (!finite || !isfinite (width) || width < 0 || (width == 0 && points->len > 0))
    {
      g_warning ("set-centerline: points must be finite and the width > 0 mm");
      return;
    }
  cs_annotation_set_centerline (data, (const CsCenterlinePoint *) points->data, points->len,
                                width);
}

static void
on_accept_model (GSimpleAction *action, GVariant *param, gpointer data)
{
  cs_annotation_accept_model_calls (data);
}

static void
on_undo (GSimpleAction *action, GVariant *param, gpointer data)
{
  cs_annotation_undo (data);
}

static void
on_redo (GSimpleAction *action, GVariant *param, gpointer data)
{
  cs_annotation_redo (data);
}

static void
on_save (GSimpleAction *action, GVariant *param, gpointer data)
{
  /* The outcome is the save-state and last-error properties; no wait on the main thread
   * when the document saves in the background. */
  cs_annotation_request_save (data);
}

static void
on_restore_recovery (GSimpleAction *action, GVariant *param, gpointer data)
{
  g_autoptr (GError) error = NULL;
  if (!cs_annotation_restore_recovery (data, &error))
    g_warning ("%s", error->message);
}

static void
on_discard_recovery (GSimpleAction *action, GVariant *param, gpointer data)
{
  g_autoptr (GError) error = NULL;
  if (!cs_annotation_discard_recovery (data, &error))
    g_warning ("%s", error->message);
}

GActionGroup *
cs_annotation_get_action_group (CsAnnotation *self)
{
  g_return_val_if_fail (CS_IS_ANNOTATION (self), NULL);
  return G_ACTION_GROUP (self->actions);
}

/* ---- GObject ---------------------------------------------------------------------- */

static void
cs_annotation_finalize (GObject *object)
{
  CsAnnotation *self = CS_ANNOTATION (object);
  /* Every queued write holds a reference: none is left by now. */
  if (self->save_pool != NULL)
    g_thread_pool_free (self->save_pool, FALSE, TRUE);
  g_clear_pointer (&self->save_context, g_main_context_unref);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->idle);
  g_free (self->path);
  g_free (self->recovery_path);
  g_clear_pointer (&self->sidecar, cs_sidecar_free);
  g_free (self->annotator);
  g_clear_pointer (&self->file_discs, g_array_unref);
  g_clear_pointer (&self->undo_stack, g_ptr_array_unref);
  g_clear_pointer (&self->redo_stack, g_ptr_array_unref);
  g_free (self->last_error);
  g_free (self->pending_recovery);
  g_clear_pointer (&self->pending_sidecar, cs_sidecar_free);
  g_clear_object (&self->actions);
  G_OBJECT_CLASS (cs_annotation_parent_class)->finalize (object);
}

static void
cs_annotation_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  CsAnnotation *self = CS_ANNOTATION (object);
  switch (prop_id)
    {
    case PROP_SAVE_STATE:
      g_value_set_int (value, self->save_state);
      break;
    case PROP_LAST_ERROR:
      g_value_set_string (value, self->last_error);
      break;
    case PROP_CAN_UNDO:
      g_value_set_boolean (value, cs_annotation_can_undo (self));
      break;
    case PROP_CAN_REDO:
      g_value_set_boolean (value, cs_annotation_can_redo (self));
      break;
    case PROP_PENDING_RECOVERY:
      g_value_set_string (value, self->pending_recovery);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cs_annotation_class_init (CsAnnotationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->finalize = cs_annotation_finalize;
  object_class->get_property = cs_annotation_get_property;

  GParamFlags flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;
  properties[PROP_SAVE_STATE] = g_param_spec_int ("save-state", NULL, NULL,
                                                  CS_SAVE_STATE_SAVED, CS_SAVE_STATE_FAILED,
                                                  CS_SAVE_STATE_SAVED, flags);
  properties[PROP_LAST_ERROR] = g_param_spec_string ("last-error", NULL, NULL, NULL, flags);
  properties[PROP_CAN_UNDO] = g_param_spec_boolean ("can-undo", NULL, NULL, FALSE, flags);
  properties[PROP_CAN_REDO] = g_param_spec_boolean ("can-redo", NULL, NULL, FALSE, flags);
  properties[PROP_PENDING_RECOVERY] = g_param_spec_string ("pending-recovery", NULL, NULL,
                                                           NULL, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* changed (guint parts): CsAnnotationPart flags of what an edit, undo or redo touched. */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void
cs_annotation_init (CsAnnotation *self)
{
  self->undo_stack = g_ptr_array_new_with_free_func ((GDestroyNotify) command_free);
  self->redo_stack = g_ptr_array_new_with_free_func ((GDestroyNotify) command_free);
  self->autosave = TRUE;
  self->save_state = CS_SAVE_STATE_SAVED;
  g_mutex_init (&self->lock);
  g_cond_init (&self->idle);
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    self->model_scores[i] = NAN;

  static const GActionEntry entries[] = {
    { "set-label", on_set_label, "(is)", NULL, NULL, { 0 } },
    { "clear-label", on_clear_label, "i", NULL, NULL, { 0 } },
    { "place-disc", on_place_disc, "(iddd)", NULL, NULL, { 0 } },
    { "delete-disc", on_delete_disc, "i", NULL, NULL, { 0 } },
    { "set-flags", on_set_flags, "(sbs)", NULL, NULL, { 0 } },
    { "set-note", on_set_note, "s", NULL, NULL, { 0 } },
    { "set-centerline", on_set_centerline, "(a(ddd)d)", NULL, NULL, { 0 } },
    { "accept-model", on_accept_model, NULL, NULL, NULL, { 0 } },
    { "undo", on_undo, NULL, NULL, NULL, { 0 } },
    { "redo", on_redo, NULL, NULL, NULL, { 0 } },
    { "save", on_save, NULL, NULL, NULL, { 0 } },
    { "restore-recovery", on_restore_recovery, NULL, NULL, NULL, { 0 } },
    { "discard-recovery", on_discard_recovery, NULL, NULL, NULL, { 0 } },
  };
  self->actions = g_simple_action_group_new ();
  g_action_map_add_action_entries (G_ACTION_MAP (self->actions), entries,
                                   G_N_ELEMENTS (entries), self);
}
