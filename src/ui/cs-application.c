/* cs-application.c: app actions, accelerators, settings, and what opens at start. */
#include "cs-config.h"

#include <glib/gi18n.h>

#include "io/cs-paths.h"
#include "cs-application.h"
#include "cs-resources.h"
#include "cs-window.h"

struct _CsApplication
{
  AdwApplication  parent_instance;

  GSettings      *settings;
};

G_DEFINE_FINAL_TYPE (CsApplication, cs_application, ADW_TYPE_APPLICATION)

/* One table for every accelerator, so the shortcuts window and the keys cannot disagree. */
static const struct
{
  const char *action;
  const char *accels[4];
} cs_accels[] = {
  { "app.quit", { "<Control>q", NULL } },
  { "app.shortcuts", { "<Control>question", NULL } },
  { "window.close", { "<Control>w", NULL } },
  { "win.open-file", { "<Control>o", NULL } },
  { "win.open-folder", { "<Control><Shift>o", NULL } },
  { "win.open-sample", { "<Control><Alt>o", NULL } },
  { "win.detect", { "<Control>d", NULL } },
  { "win.cancel-detection", { "Escape", NULL } },
  { "win.next-case", { "Down", "j", NULL } },
  { "win.previous-case", { "Up", "k", NULL } },
  { "win.next-slice", { "Page_Down", NULL } },
  { "win.previous-slice", { "Page_Up", NULL } },
  { "win.toggle-overlay", { "space", NULL } },
  { "win.overlay-anomaly", { "<Alt>1", NULL } },
  { "win.overlay-eu", { "<Alt>2", NULL } },
  { "win.overlay-au", { "<Alt>3", NULL } },
  { "win.overlay-mean", { "<Alt>4", NULL } },
  { "win.overlay-cord", { "<Alt>5", NULL } },
  { "win.overlay-discs", { "<Alt>6", NULL } },
  { "win.overlay-lesion", { "<Alt>7", NULL } },
  { "win.zoom-in", { "<Control>plus", "<Control>equal", NULL } },
  { "win.zoom-out", { "<Control>minus", NULL } },
  { "win.zoom-fit", { "<Control>0", NULL } },
  { "win.auto-window", { "<Control>r", NULL } },
  { "app.preferences", { "<Control>comma", NULL } },
  { "win.select-segment(0)", { "1", NULL } },
  { "win.select-segment(1)", { "2", NULL } },
  { "win.select-segment(2)", { "3", NULL } },
  { "win.select-segment(3)", { "4", NULL } },
  { "win.select-segment(4)", { "5", NULL } },
  { "win.select-segment(5)", { "6", NULL } },
  { "win.label-normal", { "n", NULL } },
  { "win.label-hyperintense", { "h", NULL } },
  { "win.label-uncertain", { "u", NULL } },
  { "win.clear-label", { "Delete", "0", NULL } },
  { "win.accept-model", { "a", NULL } },
  { "win.undo", { "<Control>z", NULL } },
  { "win.redo", { "<Control><Shift>z", NULL } },
  { "win.place-discs", { "d", NULL } },
  { "win.draw-centerline", { "c", NULL } },
  { "win.export-csv", { "<Control>e", NULL } },
  { "win.export-json", { "<Control><Shift>e", NULL } },
  { "win.export-discs", { "<Control><Alt>e", NULL } },
  { "win.import-csv", { "<Control>i", NULL } },
};

const char *
cs_application_get_backend_name (void)
{
  /* The single place that names the backend: until the engine can be asked which one it
   * opened (issue 5, CUDA module loaded at run time), detection runs on the CPU. */
  return _("CPU");
}

char *
cs_application_find_sample (void)
{
  g_autofree char *samples = cs_data_find ("samples");

  if (samples == NULL || !g_file_test (samples, G_FILE_TEST_IS_DIR))
    return NULL;
  return g_steal_pointer (&samples);
}

/* The installed schema, else the one compiled into the build tree (running uninstalled). */
static GSettings *
cs_application_create_settings (void)
{
  GSettingsSchemaSource *installed = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) schema = NULL;

  if (installed != NULL)
    schema = g_settings_schema_source_lookup (installed, CS_APP_ID, TRUE);
  if (schema == NULL && g_file_test (CS_BUILD_ROOT "/data/gschemas.compiled", G_FILE_TEST_EXISTS))
    {
      g_autoptr(GSettingsSchemaSource) build_tree =
        g_settings_schema_source_new_from_directory (CS_BUILD_ROOT "/data", installed, FALSE,
                                                     NULL);
      if (build_tree != NULL)
        schema = g_settings_schema_source_lookup (build_tree, CS_APP_ID, FALSE);
    }
  if (schema == NULL)
    {
      g_message ("Schema %s not found: window size and last folder will not be kept", CS_APP_ID);
      return NULL;
    }
  return g_settings_new_full (schema, NULL, NULL);
}

static CsWindow *
cs_application_new_window (CsApplication *self)
{
  CsWindow *window = cs_window_new (self);
  gtk_window_present (GTK_WINDOW (window));
  return window;
}

static void
cs_application_activate (GApplication *application)
{
  CsApplication *self = CS_APPLICATION (application);
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));

  if (window != NULL)
    {
      gtk_window_present (window);
      return;
    }
  /* Started with nothing to open: show the bundled sample, so the first run shows a case. */
  cs_window_open_sample (cs_application_new_window (self));
}

static void
cs_application_open (GApplication  *application,
                     GFile        **files,
                     int            n_files,
                     const char    *hint)
{
  CsApplication *self = CS_APPLICATION (application);

  for (int i = 0; i < n_files; i++)
    cs_window_open (cs_application_new_window (self), files[i]);
}

static void
cs_application_startup (GApplication *application)
{
  CsApplication *self = CS_APPLICATION (application);

  G_APPLICATION_CLASS (cs_application_parent_class)->startup (application);

  /* GtkApplication binds the help overlay to Ctrl+? itself; app.shortcuts owns that key. */
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "win.show-help-overlay",
                                         (const char *[]) { NULL });
  for (guint i = 0; i < G_N_ELEMENTS (cs_accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (self), cs_accels[i].action,
                                           cs_accels[i].accels);
  gtk_window_set_default_icon_name (CS_APP_ID);
  self->settings = cs_application_create_settings ();
}

static void
quit_action (GSimpleAction *action,
             GVariant      *parameter,
             gpointer       user_data)
{
  GtkApplication *app = GTK_APPLICATION (user_data);
  GList *windows = g_list_copy (gtk_application_get_windows (app));

  /* Closing each window (not g_application_quit) lets it save its size; the application
   * ends with its last window. */
  for (GList *l = windows; l != NULL; l = l->next)
    gtk_window_close (GTK_WINDOW (l->data));
  g_list_free (windows);
}

static void
about_action (GSimpleAction *action,
              GVariant      *parameter,
              gpointer       user_data)
{
  GtkApplication *app = GTK_APPLICATION (user_data);
  static const char *developers[] = { "The Cordscope authors", NULL };

  GtkWidget *about = g_object_new (ADW_TYPE_ABOUT_WINDOW,
                                   "transient-for", gtk_application_get_active_window (app),
                                   "application-name", "Cordscope",
                                   "application-icon", CS_APP_ID,
                                   "developer-name", _("The Cordscope authors"),
                                   "developers", developers,
                                   "version", CS_VERSION,
                                   "comments", _("Review T2 hyperintensity in sagittal "
                                                 "cervical-spine MRI, with an unsupervised "
                                                 "anomaly detector built in."),
                                   "website", "https://github.com/cordscope/cordscope",
                                   "issue-url", "https://github.com/cordscope/cordscope/issues",
                                   "license-type", GTK_LICENSE_GPL_3_0,
                                   /* Translators: your name(s), one per line */
                                   "translator-credits", _("translator-credits"),
                                   NULL);
  gtk_window_present (GTK_WINDOW (about));
}

static void
shortcuts_action (GSimpleAction *action,
                  GVariant      *parameter,
                  gpointer       user_data)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (user_data));

  if (window != NULL)
    gtk_widget_activate_action (GTK_WIDGET (window), "win.show-help-overlay", NULL);
}

static gboolean
cs_detector_get_mapping (GValue   *value,
                         GVariant *variant,
                         gpointer  user_data)
{
  g_value_set_boolean (value, g_str_equal (g_variant_get_string (variant, NULL), "zscore"));
  return TRUE;
}

static GVariant *
cs_detector_set_mapping (const GValue       *value,
                         const GVariantType *expected_type,
                         gpointer            user_data)
{
  return g_variant_new_string (g_value_get_boolean (value) ? "zscore" : "auto");
}

/* A threshold row: the patient score at or above it makes a case suspicious. */
static GtkWidget *
threshold_row (GSettings  *settings,
               const char *key,
               const char *title,
               const char *subtitle)
{
  GtkWidget *row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  GtkWidget *spin = gtk_spin_button_new_with_range (0.0, 100.0, 0.01);
  gtk_spin_button_set_digits (GTK_SPIN_BUTTON (spin), 3);
  gtk_widget_set_valign (spin, GTK_ALIGN_CENTER);
  g_settings_bind (settings, key, spin, "value", G_SETTINGS_BIND_DEFAULT);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), spin);
  adw_action_row_set_activatable_widget (ADW_ACTION_ROW (row), spin);
  return row;
}

static void
preferences_action (GSimpleAction *action,
                    GVariant      *parameter,
                    gpointer       user_data)
{
  CsApplication *self = CS_APPLICATION (user_data);

  if (self->settings == NULL)
    return;

  GtkWidget *window = adw_preferences_window_new ();
  gtk_window_set_transient_for (GTK_WINDOW (window),
                                gtk_application_get_active_window (GTK_APPLICATION (self)));
  gtk_window_set_modal (GTK_WINDOW (window), TRUE);
  GtkWidget *page = adw_preferences_page_new ();
  GtkWidget *group = adw_preferences_group_new ();
  adw_preferences_group_set_title (ADW_PREFERENCES_GROUP (group), _("Detection"));

  GtkWidget *detector = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (detector), _("Z-score baseline only"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (detector),
                               _("Skip the U2AD model even when it is installed"));
  GtkWidget *zscore = gtk_switch_new ();
  gtk_widget_set_valign (zscore, GTK_ALIGN_CENTER);
  g_settings_bind_with_mapping (self->settings, "detector", zscore, "active",
                                G_SETTINGS_BIND_DEFAULT, cs_detector_get_mapping,
                                cs_detector_set_mapping, NULL, NULL);
  adw_action_row_add_suffix (ADW_ACTION_ROW (detector), zscore);
  adw_action_row_set_activatable_widget (ADW_ACTION_ROW (detector), zscore);
  adw_preferences_group_add (ADW_PREFERENCES_GROUP (group), detector);

  adw_preferences_group_add (ADW_PREFERENCES_GROUP (group),
                             threshold_row (self->settings, "threshold-u2ad",
                                            _("U2AD threshold"),
                                            _("Patient and segment scores at or above it are "
                                              "suspicious")));
  adw_preferences_group_add (ADW_PREFERENCES_GROUP (group),
                             threshold_row (self->settings, "threshold-zscore",
                                            _("Z-score threshold"),
                                            _("The same for the z-score baseline")));
  adw_preferences_page_add (ADW_PREFERENCES_PAGE (page), ADW_PREFERENCES_GROUP (group));

  /* Who labels: stored with every label (libadwaita 1.2 has no AdwEntryRow). */
  GtkWidget *annotation = adw_preferences_group_new ();
  adw_preferences_group_set_title (ADW_PREFERENCES_GROUP (annotation), _("Annotation"));
  GtkWidget *annotator = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (annotator), _("Annotator name"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (annotator),
                               _("Stored with every label you set; empty: your user name."));
  GtkWidget *name = gtk_entry_new ();
  gtk_widget_set_valign (name, GTK_ALIGN_CENTER);
  g_settings_bind (self->settings, "annotator-name", name, "text", G_SETTINGS_BIND_DEFAULT);
  adw_action_row_add_suffix (ADW_ACTION_ROW (annotator), name);
  adw_action_row_set_activatable_widget (ADW_ACTION_ROW (annotator), name);
  adw_preferences_group_add (ADW_PREFERENCES_GROUP (annotation), annotator);
  adw_preferences_page_add (ADW_PREFERENCES_PAGE (page), ADW_PREFERENCES_GROUP (annotation));
  adw_preferences_window_add (ADW_PREFERENCES_WINDOW (window), ADW_PREFERENCES_PAGE (page));
  gtk_window_present (GTK_WINDOW (window));
}

static const GActionEntry cs_application_actions[] = {
  { .name = "quit", .activate = quit_action },
  { .name = "about", .activate = about_action },
  { .name = "shortcuts", .activate = shortcuts_action },
  { .name = "preferences", .activate = preferences_action },
};

static void
cs_application_dispose (GObject *object)
{
  CsApplication *self = CS_APPLICATION (object);

  g_clear_object (&self->settings);

  G_OBJECT_CLASS (cs_application_parent_class)->dispose (object);
}

static void
cs_application_class_init (CsApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  object_class->dispose = cs_application_dispose;
  app_class->startup = cs_application_startup;
  app_class->activate = cs_application_activate;
  app_class->open = cs_application_open;

  /* Before any template loads; see resources/meson.build for why by hand. */
  cs_register_resource ();
}

static void
cs_application_init (CsApplication *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), cs_application_actions,
                                   G_N_ELEMENTS (cs_application_actions), self);
}

CsApplication *
cs_application_new (void)
{
  return g_object_new (CS_TYPE_APPLICATION,
                       "application-id", CS_APP_ID,
                       "flags", G_APPLICATION_HANDLES_OPEN,
                       "resource-base-path", "/io/github/cordscope/Cordscope",
                       NULL);
}

GSettings *
cs_application_get_settings (CsApplication *self)
{
  g_return_val_if_fail (CS_IS_APPLICATION (self), NULL);
  return self->settings;
}
