-- mod_lua fixup hook of the storage testbed: create the missing parent collections of a PUT,
-- as grid WebDAV storages (dCache, EOS, StoRM) do. Plain mod_dav answers 409 Conflict instead
-- (RFC 4918), and Rucio's webdav protocol takes a 409 on PUT for "file already exists".
require "apache2"

function make_parents(r)
    if r.method ~= "PUT" then
        return apache2.DECLINED
    end
    local path = r.filename .. (r.path_info or "")
    local parent = path:match("^(.*)/[^/]+$")
    if parent and parent ~= "" then
        r:mkrdir(parent)
    end
    return apache2.DECLINED
end
