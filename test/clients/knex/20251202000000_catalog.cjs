/** Knex: products and prices with an increments key, a foreign key, a unique index and a view. */
exports.up = async (knex) => {
  await knex.schema.createTable("kx_products", (t) => {
    t.increments("id");
    t.text("sku").notNullable().unique();
    t.jsonb("attributes").notNullable().defaultTo("{}");
  });
  await knex.schema.createTable("kx_prices", (t) => {
    t.bigIncrements("id");
    t.integer("product_id").notNullable().references("id").inTable("kx_products");
    t.decimal("amount", 10, 2).notNullable();
    t.timestamp("valid_from", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createView("kx_current_prices", (v) => {
    v.as(
      knex("kx_prices")
        .distinctOn("product_id")
        .select("product_id", "amount")
        .orderBy([{ column: "product_id" }, { column: "valid_from", order: "desc" }]),
    );
  });
};

exports.down = async (knex) => {
  await knex.schema.dropView("kx_current_prices");
  await knex.schema.dropTable("kx_prices");
  await knex.schema.dropTable("kx_products");
};
