/* cs-window.c: the main window's state (empty, loading, showing, failed) and its pages. */
#include "cs-config.h"

#include <glib/gi18n.h>

#include "cs-window-private.h"

G_DEFINE_FINAL_TYPE (CsWindow, cs_window, ADW_TYPE_APPLICATION_WINDOW)

G_DEFINE_ENUM_TYPE (CsWindowState, cs_window_state,
  G_DEFINE_ENUM_VALUE (CS_WINDOW_STATE_EMPTY, "empty"),
  G_DEFINE_ENUM_VALUE (CS_WINDOW_STATE_LOADING, "loading"),
  G_DEFINE_ENUM_VALUE (CS_WINDOW_STATE_SHOWING, "showing"),
  G_DEFINE_ENUM_VALUE (CS_WINDOW_STATE_FAILED, "failed"))

enum {
  PROP_0,
  PROP_STATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* How long a case may take to open before the loading page replaces the current one. */
#define LOADING_PAGE_DELAY_MS 250

static void
cs_window_show_loading_page (gpointer user_data)
{
  CsWindow *self = user_data;

  self->loading_page_timeout = 0;
  gtk_stack_set_visible_child_name (self->stack, "loading");
  gtk_spinner_set_spinning (self->loading_spinner, TRUE);
}

static void
cs_window_set_state (CsWindow      *self,
                     CsWindowState  state)
{
  static const char *const page_names[] = {
    [CS_WINDOW_STATE_EMPTY] = "empty",
    [CS_WINDOW_STATE_LOADING] = "loading",
    [CS_WINDOW_STATE_SHOWING] = "slice",
    [CS_WINDOW_STATE_FAILED] = "error",
  };

  g_clear_handle_id (&self->loading_page_timeout, g_source_remove);
  gtk_spinner_set_spinning (self->loading_spinner, FALSE);
  if (state == CS_WINDOW_STATE_LOADING)
    {
      /* Most cases open in well under a second: the case on screen stays until the next
       * one is ready, and the spinner only shows for slow ones, so nothing flashes. */
      if (self->state != CS_WINDOW_STATE_SHOWING)
        gtk_stack_set_visible_child_name (self->stack, "loading");
      self->loading_page_timeout =
        g_timeout_add_once (LOADING_PAGE_DELAY_MS, cs_window_show_loading_page, self);
    }
  else
    gtk_stack_set_visible_child_name (self->stack, page_names[state]);
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

static void
cs_window_show_titles (CsWindow   *self,
                       const char *title,
                       const char *subtitle)
{
  adw_window_title_set_title (self->window_title, title);
  adw_window_title_set_subtitle (self->window_title, subtitle != NULL ? subtitle : "");
  gtk_window_set_title (GTK_WINDOW (self), title);
}

static void
cs_window_show_failure (CsWindow     *self,
                        const char   *what,
                        const GError *error)
{
  g_autofree char *title = g_strdup_printf (_("Could Not Open “%s”"), what);

  adw_status_page_set_title (self->error_page, title);
  /* The description is Pango markup; file names may hold '&' or '<'. */
  g_autofree char *reason = g_markup_escape_text (error->message, -1);
  adw_status_page_set_description (self->error_page, reason);
  /* The case that was on screen is gone too: the window says what failed, nothing else. */
  cs_slice_view_set_sagittal (self->slice_view, NULL, 0);
  g_clear_pointer (&self->loaded, cs_loaded_case_free);
  cs_window_show_titles (self, "Cordscope", NULL);
  cs_window_set_state (self, CS_WINDOW_STATE_FAILED);
}

static void
cs_window_load_done (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(CsWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  GTask *task = G_TASK (result);
  GFile *file = g_task_get_task_data (task);
  g_autoptr(CsLoadedCase) loaded = cs_case_loader_load_finish (result, &error);

  /* A newer open replaced this one; its result is no longer wanted. */
  if (g_task_get_cancellable (task) != self->load_cancellable)
    return;
  g_clear_object (&self->load_cancellable);

  if (loaded == NULL)
    {
      g_autofree char *basename = g_file_get_basename (file);
      g_autofree char *what = g_filename_display_name (basename);
      cs_window_show_failure (self, what, error);
      return;
    }

  g_autofree char *folder = g_path_get_dirname (loaded->image_path);
  g_autofree char *folder_name = g_filename_display_basename (folder);
  cs_window_show_titles (self, loaded->name, folder_name);
  cs_slice_view_set_sagittal (self->slice_view, g_steal_pointer (&loaded->sagittal),
                              loaded->n_slices);
  g_clear_pointer (&self->loaded, cs_loaded_case_free);
  self->loaded = g_steal_pointer (&loaded);
  cs_window_set_state (self, CS_WINDOW_STATE_SHOWING);
}

void
cs_window_open (CsWindow *self,
                GFile    *file)
{
  g_return_if_fail (CS_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  if (self->load_cancellable != NULL)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  self->load_cancellable = g_cancellable_new ();

  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *display_name = g_filename_display_name (name);
  g_autofree char *loading = g_strdup_printf (_("Opening “%s”…"), display_name);
  adw_status_page_set_title (self->loading_page, loading);
  cs_window_set_state (self, CS_WINDOW_STATE_LOADING);

  cs_case_loader_load_async (file, self->load_cancellable, cs_window_load_done,
                             g_object_ref (self));
}

void
cs_window_open_sample (CsWindow *self)
{
  g_autofree char *samples = cs_application_find_sample ();

  g_return_if_fail (CS_IS_WINDOW (self));

  if (samples == NULL)
    {
      g_autoptr(GError) error =
        g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                             _("The sample case that ships with Cordscope is not installed. "
                               "Open a case of your own instead."));
      cs_window_show_failure (self, _("the bundled sample"), error);
      return;
    }

  g_autoptr(GFile) file = g_file_new_for_path (samples);
  cs_window_open (self, file);
}

CsWindowState
cs_window_get_state (CsWindow *self)
{
  g_return_val_if_fail (CS_IS_WINDOW (self), CS_WINDOW_STATE_EMPTY);
  return self->state;
}

const char *
cs_window_get_case_name (CsWindow *self)
{
  g_return_val_if_fail (CS_IS_WINDOW (self), NULL);
  return self->loaded != NULL ? self->loaded->name : NULL;
}

const char *
cs_window_get_image_path (CsWindow *self)
{
  g_return_val_if_fail (CS_IS_WINDOW (self), NULL);
  return self->loaded != NULL ? self->loaded->image_path : NULL;
}

void
cs_window_remember_folder (CsWindow *self,
                           GFile    *file)
{
  if (self->settings == NULL)
    return;

  g_autoptr(GFile) folder = NULL;
  if (g_file_query_file_type (file, G_FILE_QUERY_INFO_NONE, NULL) == G_FILE_TYPE_DIRECTORY)
    folder = g_object_ref (file);
  else
    folder = g_file_get_parent (file);
  g_autofree char *path = folder != NULL ? g_file_get_path (folder) : NULL;
  if (path != NULL)
    g_settings_set_string (self->settings, "last-folder", path);
}

static gboolean
cs_window_close_request (GtkWindow *window)
{
  CsWindow *self = CS_WINDOW (window);

  if (self->settings != NULL)
    {
      gboolean maximized = gtk_window_is_maximized (window);
      g_settings_set_boolean (self->settings, "window-maximized", maximized);
      if (!maximized)
        {
          int width, height;
          gtk_window_get_default_size (window, &width, &height);
          g_settings_set_int (self->settings, "window-width", MAX (width, 360));
          g_settings_set_int (self->settings, "window-height", MAX (height, 360));
        }
    }

  return GTK_WINDOW_CLASS (cs_window_parent_class)->close_request (window);
}

static void
cs_window_constructed (GObject *object)
{
  CsWindow *self = CS_WINDOW (object);
  /* The "application" property is set only after constructed(): ask for the running one. */
  GApplication *app = g_application_get_default ();

  G_OBJECT_CLASS (cs_window_parent_class)->constructed (object);

  if (CS_IS_APPLICATION (app) && cs_application_get_settings (CS_APPLICATION (app)) != NULL)
    self->settings = g_object_ref (cs_application_get_settings (CS_APPLICATION (app)));
  if (self->settings != NULL)
    {
      gtk_window_set_default_size (GTK_WINDOW (self),
                                   g_settings_get_int (self->settings, "window-width"),
                                   g_settings_get_int (self->settings, "window-height"));
      if (g_settings_get_boolean (self->settings, "window-maximized"))
        gtk_window_maximize (GTK_WINDOW (self));
    }

  g_autofree char *backend = g_strdup_printf (_("Engine: %s"), cs_application_get_backend_name ());
  gtk_label_set_label (self->backend_label, cs_application_get_backend_name ());
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->backend_label), backend);
}

static void
cs_window_dispose (GObject *object)
{
  CsWindow *self = CS_WINDOW (object);

  if (self->load_cancellable != NULL)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  g_clear_handle_id (&self->loading_page_timeout, g_source_remove);
  if (self->file_chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->file_chooser));
  g_clear_object (&self->file_chooser);
  gtk_widget_dispose_template (GTK_WIDGET (self), CS_TYPE_WINDOW);

  G_OBJECT_CLASS (cs_window_parent_class)->dispose (object);
}

static void
cs_window_finalize (GObject *object)
{
  CsWindow *self = CS_WINDOW (object);

  g_clear_pointer (&self->loaded, cs_loaded_case_free);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (cs_window_parent_class)->finalize (object);
}

static void
cs_window_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  CsWindow *self = CS_WINDOW (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cs_window_class_init (CsWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->constructed = cs_window_constructed;
  object_class->dispose = cs_window_dispose;
  object_class->finalize = cs_window_finalize;
  object_class->get_property = cs_window_get_property;
  window_class->close_request = cs_window_close_request;

  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, CS_TYPE_WINDOW_STATE, CS_WINDOW_STATE_EMPTY,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (CS_TYPE_SLICE_VIEW);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/cordscope/Cordscope/cs-window.ui");
  gtk_widget_class_bind_template_child (widget_class, CsWindow, window_title);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, backend_label);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, stack);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, empty_page);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, loading_page);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, loading_spinner);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, error_page);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, slice_view);
}

static void
cs_window_init (CsWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  cs_window_add_actions (self);
  self->state = CS_WINDOW_STATE_EMPTY;
  cs_window_set_state (self, CS_WINDOW_STATE_EMPTY);
}

CsWindow *
cs_window_new (CsApplication *application)
{
  return g_object_new (CS_TYPE_WINDOW, "application", application, NULL);
}
