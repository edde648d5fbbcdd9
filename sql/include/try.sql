-- try(sql): run sql, return 'ok' or its SQLSTATE and message, with
-- result_ids masked so that the output is stable.  For the tests that
-- show errors as rows (\i sql/include/try.sql; pg_regress runs psql in
-- the top directory); not a test itself, so not directly in sql/.
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' ||
        regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f-]{27}', '<id>', 'g');
END
$$;
