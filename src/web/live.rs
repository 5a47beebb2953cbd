//! `GET /s/{slug}/events`: the album's live updates as server-sent events
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html>), for
//! members of the space only. Each stored media item is one `media.added`
//! event whose data is `{"type":"media.added","media_id":…}`; a keep-alive
//! comment every 15 s keeps proxies from closing the stream.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::auth::Member;
use crate::{inbox, App};

/// The event stream of one space's album.
pub async fn events(
    State(app): State<Arc<App>>,
    Member { scope, .. }: Member,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.hub.subscribe(scope.id());
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(p) if matches!(p.event, inbox::Event::MediaAdded { .. }) => {
                    let ev = Event::default().event("media.added").data(&*p.json);
                    return Some((Ok(ev), rx));
                }
                Ok(_) => continue,
                // Fell behind: tell the page to look again.
                Err(RecvError::Lagged(_)) => {
                    return Some((Ok(Event::default().event("media.added").data("{}")), rx))
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .boxed();
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
