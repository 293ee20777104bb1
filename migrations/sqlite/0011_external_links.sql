-- Issues created from an incoming webhook (SPEC §11.3), linked back to the issue at the sender
-- (for GitHub: the issue's html_url), so later deliveries about it (comments) find the Mesa issue.
-- One link per (source, url); a link goes with its issue.
CREATE TABLE external_links (
    source      TEXT NOT NULL,
    url         TEXT NOT NULL,
    issue_key   TEXT NOT NULL REFERENCES issues(key) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (source, url)
) WITHOUT ROWID;
CREATE INDEX external_links_issue ON external_links(issue_key);
