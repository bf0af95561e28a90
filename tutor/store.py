"""The session store: SQLite through sqlite-utils. Schema in docs/database.md.

CONTRACT (the engine, app and CLI use exactly these; implementations may add more):

    store = Store.open(path)                    # applies migrations, WAL, busy timeout
    h = store.upsert_explainer(explainer)       # -> content hash (str)
    sid = store.create_session(h, path, mode)   # -> session id (32 hex chars); mode "offline" | "claude:<model>"
    store.latest_open_session(explainer_path)   # -> SessionRow | None (status "active")
    store.get_session(sid) / store.resolve_session_id(prefix) / store.list_sessions(...)
    mid = store.add_message(sid, role, text, raw=None, complete=True, usage=None)  # role "reader"|"tutor"|"system"
    store.update_message(mid, text=..., raw=..., complete=..., usage=...)          # while a reply streams
    store.messages(sid, after_seq=0, limit=None) -> list[MessageRow]               # by seq ascending
    store.message_count(sid)
    store.set_concept_state(sid, concept_id, state, evidence, message_seq=None)
    store.concept_states(sid) -> dict[str, ConceptStateRow]
    store.add_feedback(sid, explainer_hash, concept_id, text, source)              # "model" | "reader"
    store.feedback(explainer_hash=None, explainer_path=None) -> list[FeedbackRow]
    store.save_summary(sid, upto_seq, text) / store.latest_summary(sid) -> SummaryRow | None
    store.add_usage(sid, input_tokens, output_tokens, cache_write, cache_read, cost_usd)
    store.set_status(sid, "active" | "finished")
    store.search(query, limit=50)
    store.delete_sessions(ids)
    store.session_dump(sid) -> dict             # the JSON export shape

Every write commits before it returns: a reader's message is durable before any model
call starts.
"""
