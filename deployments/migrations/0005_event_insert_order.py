"""PostgreSQL accepts a new event only as the next link of its deployment's chain.

Together with 0002 (no UPDATE, no DELETE) and the application role's privileges
(``setup_db_roles``: SELECT and INSERT only), whoever holds Warroom's database
connection can append events, but not slip one in between, skip a number, or start a
second chain beside the first: the row must carry seq = last seq + 1 and the last
event's hash as its prev_hash. (That the row's own hash is right is what
``verify_events`` recomputes; SQL cannot reproduce the canonical JSON it covers.)
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION warroom_event_next_link() RETURNS trigger AS $$
DECLARE
    last_seq integer;
    last_hash varchar(64);
BEGIN
    SELECT seq, hash INTO last_seq, last_hash FROM deployments_event
        WHERE deployment_id = NEW.deployment_id ORDER BY seq DESC LIMIT 1;
    IF NEW.seq IS DISTINCT FROM COALESCE(last_seq, 0) + 1 THEN
        RAISE EXCEPTION 'deployments_event: event #% refused, the next event of deployment % is #%',
            NEW.seq, NEW.deployment_id, COALESCE(last_seq, 0) + 1
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.prev_hash IS DISTINCT FROM COALESCE(last_hash, '') THEN
        RAISE EXCEPTION 'deployments_event: event #% refused, its prev_hash is not the hash of event #%',
            NEW.seq, COALESCE(last_seq, 0)
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER deployments_event_next_link
    BEFORE INSERT ON deployments_event
    FOR EACH ROW EXECUTE FUNCTION warroom_event_next_link();
"""

REVERSE = """
DROP TRIGGER IF EXISTS deployments_event_next_link ON deployments_event;
DROP FUNCTION IF EXISTS warroom_event_next_link();
"""


class Migration(migrations.Migration):
    dependencies = [("deployments", "0004_chain_checkpoints")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
