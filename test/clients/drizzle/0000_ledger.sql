CREATE TYPE "__SCHEMA__"."dz_kind" AS ENUM('credit', 'debit');--> statement-breakpoint
CREATE TABLE "__SCHEMA__"."dz_accounts" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "__SCHEMA__"."dz_accounts_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"name" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "__SCHEMA__"."dz_entries" (
	"id" serial PRIMARY KEY NOT NULL,
	"account_id" integer NOT NULL,
	"kind" "__SCHEMA__"."dz_kind" NOT NULL,
	"amount" numeric(12, 2) NOT NULL
);
--> statement-breakpoint
ALTER TABLE "__SCHEMA__"."dz_entries" ADD CONSTRAINT "dz_entries_account_id_dz_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "__SCHEMA__"."dz_accounts"("id") ON DELETE no action ON UPDATE no action;
