CREATE INDEX "dz_entries_account" ON "__SCHEMA__"."dz_entries" USING btree ("account_id");
