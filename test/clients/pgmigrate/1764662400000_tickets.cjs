/** node-pg-migrate: tickets with an identity key, a check, a foreign key, an index and a function. */
exports.up = (pgm) => {
  pgm.createTable("pgm_queues", { id: "id", name: { type: "text", notNull: true, unique: true } });
  pgm.createTable("pgm_tickets", {
    id: { type: "bigint", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } },
    queue_id: { type: "integer", notNull: true, references: "pgm_queues" },
    priority: { type: "smallint", notNull: true, default: 3, check: "priority BETWEEN 1 AND 5" },
    opened: { type: "timestamptz", notNull: true, default: pgm.func("now()") },
  });
  pgm.createIndex("pgm_tickets", ["queue_id", "priority"]);
  pgm.createFunction(
    "pgm_open_tickets",
    [{ name: "q", type: "integer" }],
    { returns: "bigint", language: "sql", behavior: "STABLE" },
    "SELECT count(*) FROM pgm_tickets WHERE queue_id = q",
  );
};

exports.down = (pgm) => {
  pgm.dropFunction("pgm_open_tickets", [{ name: "q", type: "integer" }]);
  pgm.dropTable("pgm_tickets");
  pgm.dropTable("pgm_queues");
};
