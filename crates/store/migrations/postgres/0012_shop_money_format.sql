-- How the shop writes money (Shopify's `currencyFormats.moneyFormat`, as
-- plain text, e.g. `${{amount}}`), read at install with its zone and
-- currency. NULL: not read yet; amounts are written by the currency.
ALTER TABLE mirror_shops ADD COLUMN money_format TEXT;
