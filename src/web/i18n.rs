//! The UI's languages: French and English.
//!
//! Every string a page shows is a field of [`Texts`], and both languages are
//! written side by side in one `texts!` table, so a string missing in one
//! language does not compile. The [`negotiate`] middleware decides the
//! request's language and keeps it in a task-local for the request's
//! lifetime (rendering included); every template reaches it through the
//! blanket [`Localized`] trait: `{% let t = self.t() %}{{ t.log_in }}`.
//! Handlers that build messages themselves use the [`Locale`] extractor.
//!
//! The language is the `appliance_lang` cookie (set by `GET /lang/{code}`,
//! the switch in every page's footer), else the best match of the browser's
//! `Accept-Language` (RFC 9110 §12.5.4), else English. Dates are formatted
//! with chrono's locale tables (glibc's `LC_TIME` data, in pure Rust) and
//! numbers with the locale's digit grouping.

use axum::{
    extract::{FromRequestParts, Path},
    http::{header, request::Parts, HeaderMap, HeaderValue},
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
        accept_language::intersection(accept_language, &["en", "fr"])
            .first()
            .and_then(|l| Lang::parse(l))
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
        let Some(t) = chrono::DateTime::from_timestamp(unix_s, 0) else {
            return unix_s.to_string();
        };
        let (fmt, locale) = match self {
            Lang::En => ("%-d %b %Y, %H:%M", chrono::Locale::en_GB),
            Lang::Fr => ("%-d %b %Y, %H:%M", chrono::Locale::fr_FR),
        };
        t.format_localized(fmt, locale).to_string()
    }

    /// A Unix time (seconds, UTC) as a day: `Monday 30 November 2026` /
    /// `lundi 30 novembre 2026`.
    pub fn day(self, unix_s: i64) -> String {
        let Some(t) = chrono::DateTime::from_timestamp(unix_s, 0) else {
            return unix_s.to_string();
        };
        let locale = match self {
            Lang::En => chrono::Locale::en_GB,
            Lang::Fr => chrono::Locale::fr_FR,
        };
        t.format_localized("%A %-d %B %Y", locale).to_string()
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

/// The request's language, for handlers: `Locale(lang)`.
#[derive(Debug, Clone, Copy)]
pub struct Locale(pub Lang);

impl Locale {
    /// The strings of this language.
    pub fn t(self) -> &'static Texts {
        self.0.texts()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Locale {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Locale(Lang::of_request(&parts.headers)))
    }
}

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
        h.insert(header::COOKIE, HeaderValue::from_static("appliance_lang=en"));
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
