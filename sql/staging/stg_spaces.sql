-- One row per space token that unpod.spaces knows, with the API's descriptive fields renamed.
-- Empty when the loader has not stored any space yet; a space's runs still count in the marts without it.
-- materialized: table
-- optional source: unpod.spaces
-- columns:
--   space_token: the space's token (24 characters of A-Z0-9).
--   space_name: the space's name, NULL when the API did not give it.
--   space_slug: the space's slug.
--   space_type: the space's type, as the API sent it.
--   content_type: the kind of content the space holds.
--   privacy_type: the space's privacy setting.
--   organization_name: the name of the organization that owns the space.
--   organization_handle: the organization's domain handle.

with

-- Typed shape of unpod.spaces: dlt creates no column for a field the API never sent, so fill those with NULL.
spaces_contract as (
    select
        null::varchar as token,
        null::varchar as name,
        null::varchar as slug,
        null::varchar as space_type,
        null::varchar as content_type,
        null::varchar as privacy_type,
        null::varchar as organization__name,
        null::varchar as organization__domain_handle
    where false
),

source_spaces as (
    select * from spaces_contract
    union all by name
    select * from unpod.spaces
),

final as (
    select
        cast(token as varchar) as space_token,
        cast(name as varchar) as space_name,
        cast(slug as varchar) as space_slug,
        cast(space_type as varchar) as space_type,
        cast(content_type as varchar) as content_type,
        cast(privacy_type as varchar) as privacy_type,
        cast(organization__name as varchar) as organization_name,
        cast(organization__domain_handle as varchar) as organization_handle
    from source_spaces
    where token is not null
)

select * from final
