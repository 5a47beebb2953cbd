// Live inbox: new messages, read receipts and typing without reload, over
// /api/v1/ws (the session cookie authenticates it). Pages work without it.
(function () {
  if (!window.WebSocket) return;
  var thread = document.getElementById("thread");
  var list = document.querySelector("ul.convs");
  var conv = thread ? Number(thread.dataset.conversation) : null;
  var me = thread ? Number(thread.dataset.me) : null;
  var typing = document.getElementById("typing");
  var seen = document.getElementById("seen");
  // Words in the page's language, from data-* attributes of the thread (English fallback).
  function say(key, fallback) { return (thread && thread.dataset[key]) || fallback; }
  function state(d) { return say("state" + d.charAt(0).toUpperCase() + d.slice(1), d); }
  function when(iso) {
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang === "fr" ? "fr-FR" : "en-GB", {
        day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC"
      }).format(new Date(iso));
    } catch (e) { return iso; }
  }
  var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/ws");
  function send(o) { if (ws.readyState === 1) ws.send(JSON.stringify(o)); }
  ws.onopen = function () {
    if (conv) { send({ type: "join", conversation_id: conv }); send({ type: "read", conversation_id: conv }); }
  };
  var typingTimer = null;
  ws.onmessage = function (e) {
    var ev = JSON.parse(e.data);
    if (list && ev.type === "message.created") {
      var li = list.querySelector('[data-conversation="' + ev.conversation_id + '"]');
      if (li) {
        var badge = li.querySelector(".badge-count");
        if (ev.message.author_user_id !== me) badge.textContent = String(Number(badge.textContent || 0) + 1);
        li.classList.add("unread");
        list.insertBefore(li, list.firstChild);
      } else { location.reload(); }
    }
    if (!thread || ev.conversation_id !== conv) return;
    if (ev.type === "message.created" && !thread.querySelector('[data-id="' + ev.message.id + '"]')) {
      var m = ev.message, item = document.createElement("li");
      item.className = "msg " + m.author_kind + (m.author_user_id === me ? " mine" : "");
      item.dataset.id = m.id;
      var p = document.createElement("p"); p.textContent = m.text; item.appendChild(p);
      var s = document.createElement("small"); s.className = "muted"; s.textContent = when(m.created_at) + (m.delivery ? " · " + state(m.delivery) : "");
      item.appendChild(s);
      thread.appendChild(item);
      typing.hidden = true;
      send({ type: "read", conversation_id: conv });
    } else if (ev.type === "message.deleted") {
      var gone = thread.querySelector('[data-id="' + ev.message_id + '"]'); if (gone) gone.remove();
    } else if (ev.type === "typing.started" && ev.user_id !== me) {
      typing.hidden = false;
      clearTimeout(typingTimer); typingTimer = setTimeout(function () { typing.hidden = true; }, 6000);
    } else if (ev.type === "typing.stopped" && ev.user_id !== me) {
      typing.hidden = true;
    } else if (ev.type === "message.read" && ev.user_id !== me) {
      seen.hidden = false; seen.textContent = say("seen", "Seen up to message {id}").split("{id}").join(String(ev.message_id));
    } else if (ev.type === "conversation.updated") {
      location.reload();
    }
  };
  var form = document.getElementById("reply");
  if (form) {
    var text = form.querySelector("textarea"), last = 0;
    text.addEventListener("input", function () {
      var now = Date.now();
      if (now - last > 3000) { last = now; send({ type: "typing", conversation_id: conv }); }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = text.value.trim(); if (!body) return;
      fetch("/api/v1/conversations/" + conv + "/messages", {
        method: "POST", headers: { "content-type": "application/json" }, credentials: "same-origin",
        body: JSON.stringify({ text: body })
      }).then(function (r) { if (r.ok) { text.value = ""; send({ type: "typing", conversation_id: conv, active: false }); } else { form.submit(); } });
    });
  }
})();
