-- A message of the user's own, shown after the login (after the site's
-- login_message) as part of the multi-line 230: `ferry user set NAME
-- --login-message TEXT`. '' shows none.
ALTER TABLE users ADD COLUMN login_message TEXT NOT NULL DEFAULT '';
