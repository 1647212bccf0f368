-- GET /audit?subject_type=task&subject_id=... : one object's history, newest first.
CREATE INDEX audit_log_subject ON audit_log (subject_type, subject_id, at DESC, id DESC);
