-- Near-duplicate search (SPEC §2 `POST /issues/similar`) at any number of issues.
--
-- A character-trigram index over the normalized titles of open, undeleted issues (exactly the
-- issues near-duplicate search compares titles with), keyed by the issue's rowid. It stores no
-- text (contentless) and no positions (`detail=none`): queries are single trigrams, whose
-- posting lists give the candidates sharing them. Kept in step by triggers; an update touches it
-- only when the title, `open` or `deleted` actually change.
CREATE VIRTUAL TABLE issues_title_trigrams USING fts5(
    title_norm,
    content = '', contentless_delete = 1, tokenize = 'trigram', detail = 'none'
);

INSERT INTO issues_title_trigrams(rowid, title_norm)
    SELECT rowid, title_norm FROM issues WHERE open = 1 AND deleted = 0;

CREATE TRIGGER issues_title_trigrams_insert AFTER INSERT ON issues
WHEN new.open = 1 AND new.deleted = 0 BEGIN
    INSERT INTO issues_title_trigrams(rowid, title_norm) VALUES (new.rowid, new.title_norm);
END;
CREATE TRIGGER issues_title_trigrams_delete AFTER DELETE ON issues
WHEN old.open = 1 AND old.deleted = 0 BEGIN
    DELETE FROM issues_title_trigrams WHERE rowid = old.rowid;
END;
CREATE TRIGGER issues_title_trigrams_update AFTER UPDATE OF title_norm, open, deleted ON issues
WHEN old.title_norm IS NOT new.title_norm OR old.open IS NOT new.open
    OR old.deleted IS NOT new.deleted BEGIN
    DELETE FROM issues_title_trigrams WHERE rowid = old.rowid;
    INSERT INTO issues_title_trigrams(rowid, title_norm)
        SELECT new.rowid, new.title_norm WHERE new.open = 1 AND new.deleted = 0;
END;
