//! The UI's languages: French and English.
//!
//! Every string a page shows is a field of [`Texts`], and both languages are
//! written side by side in one `texts!` table, so a string missing in one
//! language does not compile. The [`negotiate`] middleware decides the
//! request's language and keeps it in a task-local for the request's
//! lifetime (rendering included); every template reaches it through the
//! blanket [`Localized`] trait: `{% let t = self.t() %}{{ t.log_in }}`.
//! Handlers that build messages themselves call [`current`].
//!
//! The language is the `appliance_lang` cookie (set by `GET /lang/{code}`,
//! the switch in every page's footer), else the best match of the browser's
//! `Accept-Language` (RFC 9110 §12.5.4), else English. Dates use each
//! language's day and month names (CLDR forms) and numbers its digit grouping.

use chrono::Datelike;

use axum::{
    extract::Path,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// Name of the cookie holding the chosen language (`en` or `fr`).
pub const LANG_COOKIE: &str = "appliance_lang";

/// A language of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// French.
    Fr,
}

impl Lang {
    /// The BCP 47 tag (`en`, `fr`), as in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// Parses `en` or `fr` (case-insensitive).
    pub fn parse(s: &str) -> Option<Lang> {
        match s.to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The strings of this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }

    /// The best of our languages for an `Accept-Language` header; `None`
    /// when it names neither.
    pub fn negotiate(accept_language: &str) -> Option<Lang> {
        // Ordered by quality; `fr-CA` counts as French (its primary subtag).
        accept_language::parse(accept_language)
            .iter()
            .find_map(|tag| Lang::parse(tag.split('-').next().unwrap_or_default()))
    }

    /// The language of a request: cookie, then `Accept-Language`, then English.
    pub fn of_request(headers: &HeaderMap) -> Lang {
        let jar = CookieJar::from_headers(headers);
        jar.get(LANG_COOKIE)
            .and_then(|c| Lang::parse(c.value()))
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::negotiate)
            })
            .unwrap_or(Lang::En)
    }

    /// A Unix time (seconds, UTC) as a date and time in this language:
    /// `30 Nov 2026, 14:05` / `30 nov. 2026, 14:05`.
    pub fn datetime(self, unix_s: i64) -> String {
        self.datetime_in(unix_s, chrono_tz::UTC)
    }

    /// [`Lang::datetime`] in time zone `zone` (a space's, for scheduled posts).
    pub fn datetime_in(self, unix_s: i64, zone: chrono_tz::Tz) -> String {
        let Some(t) = chrono::DateTime::from_timestamp(unix_s, 0) else {
            return unix_s.to_string();
        };
        let t = t.with_timezone(&zone);
        let month = self.month_abbr(t.month0() as usize);
        format!("{} {month} {}, {}", t.day(), t.year(), t.format("%H:%M"))
    }

    /// A Unix time (seconds, UTC) as a day: `Monday 30 November 2026` /
    /// `lundi 30 novembre 2026`.
    pub fn day(self, unix_s: i64) -> String {
        let Some(t) = chrono::DateTime::from_timestamp(unix_s, 0) else {
            return unix_s.to_string();
        };
        let wd = t.weekday().num_days_from_monday() as usize;
        let (weekday, month) = match self {
            Lang::En => (EN_DAYS[wd], EN_MONTHS[t.month0() as usize]),
            Lang::Fr => (FR_DAYS[wd], FR_MONTHS[t.month0() as usize]),
        };
        format!("{weekday} {} {month} {}", t.day(), t.year())
    }

    fn month_abbr(self, month0: usize) -> &'static str {
        match self {
            Lang::En => EN_MONTHS_ABBR[month0],
            Lang::Fr => FR_MONTHS_ABBR[month0],
        }
    }

    /// The name of a media kind (`photo`, `voice`...) in this language; the
    /// stored name when it is not one we know.
    pub fn kind(self, kind: &str) -> &'static str {
        let t = self.texts();
        match kind {
            "photo" => t.kind_photo,
            "video" => t.kind_video,
            "animation" => t.kind_animation,
            "video_note" => t.kind_video_note,
            "audio" => t.kind_audio,
            "voice" => t.kind_voice,
            "sticker" => t.kind_sticker,
            "message" => t.kind_message,
            _ => t.kind_document,
        }
    }

    /// An RFC 3339 time as [`Lang::datetime`]; the input unchanged when it does not parse.
    pub fn when(self, rfc3339: &str) -> String {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .map_or_else(|_| rfc3339.to_string(), |t| self.datetime(t.timestamp()))
    }

    /// An integer with the locale's digit grouping: `12,345` / `12 345`
    /// (French uses a narrow no-break space, U+202F).
    pub fn number(self, n: i64) -> String {
        let sep = match self {
            Lang::En => ",",
            Lang::Fr => "\u{202f}",
        };
        let digits = n.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3 + 1);
        if n < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    }
}

tokio::task_local! {
    static CURRENT: Lang;
}

/// The language of the request being served (English outside a request).
pub fn current() -> Lang {
    CURRENT.try_with(|l| *l).unwrap_or(Lang::En)
}

/// Middleware: decides the request's language ([`Lang::of_request`]) and
/// serves the request with it as [`current`]; HTML answers vary by it.
pub async fn negotiate(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let lang = Lang::of_request(req.headers());
    let mut resp = CURRENT.scope(lang, next.run(req)).await;
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        resp.headers_mut().insert(
            header::VARY,
            HeaderValue::from_static("Accept-Language, Cookie"),
        );
    }
    resp
}

/// What every template can call: `self.t()` (the strings) and `self.lang()`
/// (dates and numbers) of the request's language, and `self.asset(path)`,
/// the cache-busted URL of an embedded asset.
pub trait Localized {
    /// `/static/v/<content hash>/<path>`: cached for a year by browsers, and
    /// a new URL whenever the file changes. See [`super::asset_url`].
    fn asset(&self, path: &str) -> String {
        super::asset_url(path)
    }
    /// The strings of the request's language.
    fn t(&self) -> &'static Texts {
        current().texts()
    }
    /// The request's language.
    fn lang(&self) -> Lang {
        current()
    }
}

impl<T: askama::Template> Localized for T {}

// Names of days and months (CLDR, the usual forms of each language), kept
// here rather than linking every locale's tables for two languages.
const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const FR_DAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const EN_MONTHS_ABBR: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const FR_MONTHS_ABBR: [&str; 12] = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
    "déc.",
];

/// `GET /lang/{en|fr}`: remembers the language for a year (cookie) and goes
/// back to the page it was chosen on (the `Referer`'s path, never another host).
pub async fn switch(Path(code): Path<String>, headers: HeaderMap, jar: CookieJar) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "unknown language: use /lang/en or /lang/fr",
        )
            .into_response();
    };
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        });
    let back = super::auth::safe_next(back.as_deref());
    let cookie = Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::days(365))
        .build();
    let mut resp = (jar.add(cookie), Redirect::to(&back)).into_response();
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Cookie"));
    resp
}

macro_rules! texts {
    ($($key:ident: $en:expr, $fr:expr;)*) => {
        /// Every string of the UI, in one language. See the module documentation.
        #[allow(missing_docs)]
        #[derive(Debug)]
        pub struct Texts {
            $(pub $key: &'static str,)*
        }
        /// English.
        pub static EN: Texts = Texts { $($key: $en,)* };
        /// French.
        pub static FR: Texts = Texts { $($key: $fr,)* };
    };
}

texts! {
    lang: "en", "fr";
    app_name: "appliance", "appliance";
    other_lang_code: "fr", "en";
    other_lang_name: "Français", "English";
    skip_to_content: "Skip to content", "Aller au contenu";
    // Navigation
    search: "Search", "Rechercher";
    spaces: "Spaces", "Espaces";
    chats: "Chats", "Discussions";
    jobs: "Jobs", "Tâches";
    log_out: "Log out", "Se déconnecter";
    // Login
    log_in: "Log in", "Se connecter";
    user_name: "User name", "Nom d'utilisateur";
    password: "Password", "Mot de passe";
    wrong_password: "Wrong user name or password.", "Nom d'utilisateur ou mot de passe incorrect.";
    no_account_yet: "No account exists yet. Open the one-time setup link the server printed when it started, or create the first account on the server:",
        "Aucun compte n'existe encore. Ouvrez le lien de configuration à usage unique affiché par le serveur au démarrage, ou créez le premier compte sur le serveur :";
    // Spaces
    your_spaces: "Your spaces", "Vos espaces";
    no_space_yet: "You are not a member of any space yet. An admin can add you with",
        "Vous n'êtes membre d'aucun espace pour l'instant. Un administrateur peut vous ajouter avec";
    inbox: "Inbox", "Messagerie";
    statistics: "Statistics", "Statistiques";
    scheduled_posts: "Scheduled posts", "Publications programmées";
    integrations: "Integrations", "Intégrations";
    role_owner: "owner", "propriétaire";
    role_member: "member", "membre";
    role_viewer: "viewer", "lecteur";
    // Album
    add_files: "Add photos and videos", "Ajouter des photos et des vidéos";
    upload: "Upload", "Envoyer";
    album_empty: "Nothing here yet. Photos, videos, voice notes and files sent to a chat bound to this space appear here once downloaded.",
        "Rien ici pour l'instant. Les photos, vidéos, messages vocaux et fichiers envoyés dans une discussion liée à cet espace apparaissent ici une fois téléchargés.";
    older: "Older", "Plus anciens";
    new_items: "New items arrived.", "De nouveaux éléments sont arrivés.";
    show_them: "Show them", "Les afficher";
    lightbox: "Photo viewer", "Visionneuse";
    previous: "Previous", "Précédent";
    next: "Next", "Suivant";
    close: "Close", "Fermer";
    open_details: "Details", "Détails";
    // Media kinds
    kind_photo: "photo", "photo";
    kind_video: "video", "vidéo";
    kind_animation: "animation", "animation";
    kind_video_note: "video message", "message vidéo";
    kind_audio: "audio", "audio";
    kind_voice: "voice message", "message vocal";
    kind_document: "document", "document";
    kind_sticker: "sticker", "autocollant";
    // Media page
    kind: "Kind", "Type";
    from: "From", "De";
    sent: "Sent", "Envoyé";
    taken: "Taken", "Pris le";
    camera: "Camera", "Appareil";
    size: "Size", "Dimensions";
    bytes: "Bytes", "Octets";
    file_name: "File name", "Nom du fichier";
    chat: "Chat", "Discussion";
    download_original: "Download original", "Télécharger l'original";
    delete: "Delete", "Supprimer";
    confirm_delete: "Delete this item from the album?", "Supprimer cet élément de l'album ?";
    // Search
    all_my_spaces: "All my spaces", "Tous mes espaces";
    space: "Space", "Espace";
    nothing_found: "Nothing found.", "Aucun résultat.";
    more: "More", "Plus";
    search_placeholder: "birthday grandma, beach 2023, kind:photo from:Mario", "anniversaire mamie, plage 2023, kind:photo from:Mario";
    how_to_search: "How to search", "Comment chercher";
    search_help: "Words match with or without accents, in French and English forms, with one typo in longer words.",
        "Les mots correspondent avec ou sans accents, au singulier comme au pluriel, en français et en anglais, avec une faute de frappe tolérée dans les mots longs.";
    search_help_syntax: "to exclude a word; filters:", "pour exclure un mot ; filtres :";
    kind_message: "message", "message";
    // First run
    setup_title: "Welcome: set up appliance", "Bienvenue : configurons appliance";
    setup_intro: "This link works once. Create the administrator account and the first space; you can add more people and spaces later.",
        "Ce lien ne sert qu'une fois. Créez le compte administrateur et le premier espace ; vous pourrez ajouter d'autres personnes et espaces ensuite.";
    setup_admin: "Administrator", "Administrateur";
    setup_password_again: "Password again", "Mot de passe (encore)";
    setup_password_hint: "At least 10 characters.", "Au moins 10 caractères.";
    setup_space_name: "Name of the first space", "Nom du premier espace";
    setup_space_hint: "For example “Family” or “Studio Ink”.", "Par exemple « Famille » ou « Studio Ink ».";
    setup_create: "Create", "Créer";
    setup_link_invalid: "This setup link is not valid (it works once, and only before the first account exists). Restart the server to print a new one.",
        "Ce lien de configuration n'est pas valable (il ne sert qu'une fois, et seulement avant la création du premier compte). Redémarrez le serveur pour en afficher un nouveau.";
    setup_passwords_differ: "The two passwords differ.", "Les deux mots de passe sont différents.";
    setup_password_short: "The password needs at least 10 characters.", "Le mot de passe doit comporter au moins 10 caractères.";
    setup_fields_missing: "A name is needed for the administrator and for the space.", "Il faut un nom pour l'administrateur et pour l'espace.";
    telegram_title: "Connect a Telegram bot", "Connecter un bot Telegram";
    telegram_step1: "In Telegram, open a chat with @BotFather and send /newbot. Choose a name and a user name ending in “bot”.",
        "Dans Telegram, ouvrez une discussion avec @BotFather et envoyez /newbot. Choisissez un nom, puis un nom d'utilisateur qui finit par « bot ».";
    telegram_step2: "BotFather answers with a token such as 123456789:AAE…. Paste it below and test it.",
        "BotFather répond avec un jeton du type 123456789:AAE…. Collez-le ci-dessous et testez-le.";
    telegram_step3: "Send /setprivacy to BotFather, pick your bot and choose Disable, so the bot sees every message of the family group, not only commands.",
        "Envoyez /setprivacy à BotFather, choisissez votre bot puis Disable, pour que le bot voie tous les messages du groupe familial, pas seulement les commandes.";
    telegram_step4: "Put the token in the configuration file (telegram_token = \"…\") or in APPLIANCE_TELEGRAM_TOKEN, restart the server, then add the bot to your group: the group appears under Chats, ready to be bound to this space.",
        "Mettez le jeton dans le fichier de configuration (telegram_token = \"…\") ou dans APPLIANCE_TELEGRAM_TOKEN, redémarrez le serveur, puis ajoutez le bot à votre groupe : le groupe apparaît dans Discussions, prêt à être lié à cet espace.";
    telegram_token: "Bot token", "Jeton du bot";
    telegram_test: "Test connection", "Tester la connexion";
    telegram_ok: "Connected: this token belongs to", "Connexion réussie : ce jeton appartient à";
    telegram_failed: "Telegram refused the connection:", "Telegram a refusé la connexion :";
    telegram_configured: "A bot token is already configured on this server.", "Un jeton de bot est déjà configuré sur ce serveur.";
    continue_to_album: "Go to the album", "Aller à l'album";
    // Live
    live_new_photo: "New in the album", "Nouveau dans l'album";
    // Shared by the pages below
    back: "Back", "Retour";
    col_id: "Id", "Identifiant";
    col_type: "Type", "Type";
    col_state: "State", "État";
    col_attempts: "Attempts", "Tentatives";
    col_error: "Error", "Erreur";
    col_file: "File", "Fichier";
    state_pending: "pending", "en attente";
    state_failed: "failed", "en échec";
    // Statistics
    stat_media: "media", "médias";
    stat_megabytes: "MB", "Mo";
    stat_downloads_ok: "downloads succeeded", "téléchargements réussis";
    stat_duplicates: "duplicates skipped", "doublons ignorés";
    stat_jobs_pending: "jobs pending", "tâches en attente";
    stat_jobs_failed: "jobs failed", "tâches en échec";
    stat_auto_replies: "automatic replies", "réponses automatiques";
    by_kind: "By kind", "Par type";
    last_7_days: "Last 7 days", "7 derniers jours";
    media_not_stored: "Media that could not be stored", "Médias qui n'ont pas pu être enregistrés";
    col_reason: "Reason", "Raison";
    failed_jobs: "Failed jobs", "Tâches en échec";
    link_telegram_chat: "Link a Telegram chat", "Lier une discussion Telegram";
    get_link_code: "Get a link code", "Obtenir un code de liaison";
    // Link code
    link_chat: "Link a chat", "Lier une discussion";
    link_chat_to: "Link a Telegram chat to", "Lier une discussion Telegram à";
    link_step_add_bot: "Add the bot to the family chat (or open a private chat with it).",
        "Ajoutez le bot à la discussion familiale (ou ouvrez une discussion privée avec lui).";
    link_step_send: "Send this message in the chat, within the next hour:",
        "Envoyez ce message dans la discussion, dans l'heure qui vient\u{a0}:";
    link_after: "From then on, every photo, video, voice note and file sent there lands in this space, including the ones sent before while the chat was waiting.",
        "Dès lors, chaque photo, vidéo, message vocal et fichier envoyé dans cette discussion arrive dans cet espace, y compris ceux envoyés pendant que la discussion était en attente.";
    link_owners_only: "only owners of the space can link chats", "seuls les propriétaires de l'espace peuvent lier des discussions";
    // Chats
    telegram_chats: "Telegram chats", "Discussions Telegram";
    chats_none: "The bot has not heard from any chat yet. Add it to your family chat and send a message.",
        "Le bot n'a encore reçu aucun message. Ajoutez-le à votre discussion familiale et envoyez un message.";
    col_waiting: "Waiting", "En attente";
    chat_not_seen_yet: "(not seen yet)", "(pas encore vue)";
    chat_private: "private", "privée";
    chat_group: "group", "groupe";
    chat_supergroup: "supergroup", "supergroupe";
    chat_channel: "channel", "canal";
    chat_unknown: "unknown", "inconnue";
    bind: "Bind", "Lier";
    // Jobs
    background_jobs: "Background jobs", "Tâches en arrière-plan";
    job_queued: "queued", "en file d'attente";
    job_running: "running", "en cours";
    job_done: "done", "terminées";
    failed: "Failed", "En échec";
    retry: "Retry", "Réessayer";
    // Inbox
    open_conversations: "Open conversations", "Conversations ouvertes";
    archived: "Archived", "Archivées";
    inbox_empty: "No conversation yet. Booking an appointment opens one; clients writing to the bot land here.",
        "Aucune conversation pour l'instant. Chaque rendez-vous pris en ouvre une\u{a0}; les messages des clients au bot arrivent ici.";
    unread_messages: "unread messages", "messages non lus";
    // Conversation
    typing: "typing…", "en train d'écrire…";
    seen_up_to: "Seen up to message {id}", "Vu jusqu'au message {id}";
    reply: "Reply", "Répondre";
    reply_placeholder: "Reply…", "Votre réponse…";
    send: "Send", "Envoyer";
    delivery_sent: "sent", "envoyé";
    delivery_delivered: "delivered", "remis";
    delivery_read: "read", "lu";
    // Integrations
    integrations_none: "No integration yet: add one below to hear about new photos, messages and problems.",
        "Aucune intégration pour l'instant\u{a0}: ajoutez-en une ci-dessous pour être averti des nouvelles photos, des messages et des problèmes.";
    paused: "paused", "en pause";
    secret: "secret", "secret";
    secret_unreadable: "(unreadable)", "(illisible)";
    events_colon: "Events:", "Événements\u{a0}:";
    events: "Events", "Événements";
    event: "Event", "Événement";
    send_test: "Send test", "Envoyer un test";
    hook_delivered: "delivered", "remise";
    add_integration: "Add an integration", "Ajouter une intégration";
    integration_webhook: "Webhook (Standard Webhooks, signed)", "Webhook (Standard Webhooks, signé)";
    integration_telegram: "Telegram chat", "Discussion Telegram";
    integration_discord: "Discord webhook", "Webhook Discord";
    integration_slack: "Slack webhook", "Webhook Slack";
    integration_email: "Email", "E-mail";
    integration_target: "Target (URL, chat id or email address)", "Destination (URL, identifiant de discussion ou adresse e-mail)";
    integration_secret: "Secret (webhook: whsec_…, generated if empty; Telegram: bot token; email: SMTP URL, optional)",
        "Secret (webhook\u{a0}: whsec_…, généré s'il est vide\u{a0}; Telegram\u{a0}: jeton du bot\u{a0}; e-mail\u{a0}: URL SMTP, facultatif)";
    add: "Add", "Ajouter";
    autoresponder: "Autoresponder", "Répondeur automatique";
    auto_replies_sent: "automatic replies sent.", "réponses automatiques envoyées.";
    mode: "Mode", "Mode";
    mode_off: "Off", "Désactivé";
    mode_away: "Away", "Absent";
    mode_busy: "Busy", "Occupé";
    mode_schedule: "Away outside opening hours", "Absent en dehors des heures d'ouverture";
    opening_hours_help: "Opening hours, one per line: weekday (0 = Monday) from to, e.g.",
        "Heures d'ouverture, une plage par ligne\u{a0}: jour (0 = lundi) début fin, par exemple";
    time_zone: "Time zone", "Fuseau horaire";
    away_message_en: "Away message (English)", "Message d'absence (anglais)";
    away_message_fr: "Away message (French)", "Message d'absence (français)";
    busy_message_en: "Busy message (English)", "Message «\u{a0}occupé\u{a0}» (anglais)";
    busy_message_fr: "Busy message (French)", "Message «\u{a0}occupé\u{a0}» (français)";
    cooldown_hours: "Hours before answering the same contact again", "Heures avant de répondre de nouveau au même contact";
    never_answer: "Never answer these contacts (ids, comma-separated)", "Ne jamais répondre à ces contacts (identifiants, séparés par des virgules)";
    save: "Save", "Enregistrer";
    integration_added: "Integration {id} added.", "Intégration {id} ajoutée.";
    integration_secret_once: "Its signing secret (shown once): {secret}", "Son secret de signature (affiché une seule fois)\u{a0}: {secret}";
    test_delivered: "Test delivered to integration {id}.", "Test remis à l'intégration {id}.";
    test_failed: "Test of integration {id} failed: {error}", "Le test de l'intégration {id} a échoué\u{a0}: {error}";
    owners_manage_integrations: "only the space's owners manage its integrations", "seuls les propriétaires de l'espace gèrent ses intégrations";
    chat_id_is_number: "the chat id is a number", "l'identifiant de la discussion est un nombre";
    telegram_needs_token: "a Telegram integration needs the bot token", "une intégration Telegram a besoin du jeton du bot";
    target_must_be_url: "the target must be an http(s) URL", "la destination doit être une URL http(s)";
    bad_opening_hours: "opening hours: {line} should read like \"0 09:00 18:00\" (weekday, from, to)",
        "heures d'ouverture\u{a0}: {line} doit s'écrire comme «\u{a0}0 09:00 18:00\u{a0}» (jour, début, fin)";
    not_a_weekday: "{day} is not a weekday number (0 = Monday)", "{day} n'est pas un numéro de jour (0 = lundi)";
    not_a_contact_id: "{id} is not a contact id", "{id} n'est pas un identifiant de contact";
    // Scheduled posts
    nothing_scheduled: "Nothing scheduled.", "Rien de programmé.";
    when: "When", "Quand";
    text: "Text", "Texte";
    photo: "Photo", "Photo";
    post_scheduled: "scheduled", "programmée";
    post_sent: "sent", "envoyée";
    post_cancelled: "cancelled", "annulée";
    cancel: "Cancel", "Annuler";
    schedule_a_post: "Schedule a post", "Programmer une publication";
    bind_chat_first: "Bind a Telegram chat to this space first.", "Liez d'abord une discussion Telegram à cet espace.";
    album_item_number: "Album photo number (optional)", "Numéro de la photo dans l'album (facultatif)";
    schedule: "Schedule", "Programmer";
    viewers_cannot_schedule: "viewers cannot schedule posts", "les lecteurs ne peuvent pas programmer de publications";
    not_an_album_item: "{item} is not an album item number", "{item} n'est pas un numéro d'élément de l'album";
    // Error page
    back_to_start: "Back to the start page", "Retour à la page d'accueil";
    status_400: "Bad Request", "Requête incorrecte";
    status_401: "Unauthorized", "Authentification requise";
    status_403: "Forbidden", "Accès refusé";
    status_404: "Not Found", "Page introuvable";
    status_409: "Conflict", "Conflit";
    status_413: "Payload Too Large", "Contenu trop volumineux";
    status_500: "Internal Server Error", "Erreur interne du serveur";
    status_503: "Service Unavailable", "Service indisponible";
    // Album upload (upload.js)
    upload_added_one: "{n} added", "{n} fichier ajouté";
    upload_added_many: "{n} added", "{n} fichiers ajoutés";
    upload_refused_one: "{n} refused: {list}", "{n} fichier refusé\u{a0}: {list}";
    upload_refused_many: "{n} refused: {list}", "{n} fichiers refusés\u{a0}: {list}";
    upload_failed: "Upload failed ({status})", "Échec de l'envoi ({status})";
    upload_network_error: "Upload failed: network error", "Échec de l'envoi\u{a0}: erreur réseau";
    // Albums (collections), favourites and share links
    albums: "Albums", "Albums";
    favourites: "Favourites", "Favoris";
    no_albums: "No album yet. Make one, then add photos to it from their page.", "Aucun album pour l'instant. Créez-en un, puis ajoutez-y des photos depuis leur page.";
    album_name: "Name of the new album", "Nom du nouvel album";
    create_album: "Create album", "Créer l'album";
    items_count: "items", "éléments";
    album_is_empty: "This album is empty: add photos from their page.", "Cet album est vide : ajoutez des photos depuis leur page.";
    no_favourites: "No favourites yet: mark photos with ☆ on their page.", "Aucun favori pour l'instant : marquez des photos avec ☆ sur leur page.";
    add_to_favourites: "☆ Add to favourites", "☆ Ajouter aux favoris";
    remove_from_favourites: "★ In your favourites (remove)", "★ Dans vos favoris (retirer)";
    add_to_album: "Add to album", "Ajouter à l'album";
    remove_from_album: "Remove from this album", "Retirer de cet album";
    delete_album: "Delete album", "Supprimer l'album";
    confirm_delete_album: "Delete this album? Its photos stay in the space.", "Supprimer cet album ? Ses photos restent dans l'espace.";
    share: "Share", "Partager";
    share_intro: "A share link shows this album, read only, to anyone who has it, until it expires or you revoke it.", "Un lien de partage montre cet album, en lecture seule, à toute personne qui l'a, jusqu'à son expiration ou sa révocation.";
    share_for: "Valid for", "Valable";
    days_1: "1 day", "1 jour";
    days_7: "7 days", "7 jours";
    days_30: "30 days", "30 jours";
    create_link: "Create a link", "Créer un lien";
    new_link: "New link (shown once: copy it now):", "Nouveau lien (affiché une seule fois : copiez-le maintenant) :";
    links: "Links", "Liens";
    created: "Created", "Créé";
    expires: "Expires", "Expire";
    revoked: "revoked", "révoqué";
    expired: "expired", "expiré";
    revoke: "Revoke", "Révoquer";
    shared_album: "Shared album", "Album partagé";
    shared_until: "Shared until", "Partagé jusqu'au";
    link_invalid: "This link does not open anything: it expired, was revoked, or was mistyped.", "Ce lien n'ouvre rien : il a expiré, a été révoqué ou est mal recopié.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_of_ours() {
        assert_eq!(Lang::negotiate("fr-FR,fr;q=0.9,en;q=0.8"), Some(Lang::Fr));
        assert_eq!(Lang::negotiate("de-DE,en;q=0.5,fr;q=0.4"), Some(Lang::En));
        assert_eq!(Lang::negotiate("de"), None);
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("fr-CA"));
        assert_eq!(Lang::of_request(&h), Lang::Fr);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("appliance_lang=en"),
        );
        assert_eq!(Lang::of_request(&h), Lang::En, "the choice wins");
    }

    #[test]
    fn dates_and_numbers_follow_the_locale() {
        let t = 1_796_000_000; // 2026-11-29T...
        assert!(Lang::Fr.day(t).contains("novembre"), "{}", Lang::Fr.day(t));
        assert!(Lang::En.day(t).contains("November"), "{}", Lang::En.day(t));
        assert_eq!(Lang::En.number(1_234_567), "1,234,567");
        assert_eq!(Lang::Fr.number(-12_345), "-12\u{202f}345");
        assert_eq!(Lang::Fr.number(999), "999");
    }

    #[test]
    fn both_languages_have_every_string() {
        // The macro makes a missing field a compile error; an empty one is caught here.
        let en = format!("{EN:?}");
        let fr = format!("{FR:?}");
        assert!(!en.contains(": \"\""), "empty English string");
        assert!(!fr.contains(": \"\""), "empty French string");
    }
}
