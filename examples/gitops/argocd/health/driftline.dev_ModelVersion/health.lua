-- Argo CD health check for driftline.dev ModelVersion (mapping and reasons: docs/gitops.md).
-- Plain Lua 5.1 with only the libraries Argo CD opens for custom checks (base, table, os.time/os.date): no string
-- library, so no string methods; messages are built with `..` alone.
local hs = {}

local function condition(ctype)
  for _, c in ipairs(obj.status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function holds(ctype)
  local c = condition(ctype)
  return c ~= nil and c.status == "True"
end

local function describe(c)
  local text = tostring(c.reason or c.type)
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

-- A request made through an annotation that the operator has not carried out yet (it records the value it last
-- carried out in status). Annotations do not move metadata.generation, so this is the only sign of it.
local function pending(annotation, handled, ignored)
  local annotations = obj.metadata.annotations
  if annotations == nil then
    return nil
  end
  local value = annotations[annotation]
  if value == nil or value == "" or value == handled then
    return nil
  end
  for _, v in ipairs(ignored) do
    if value == v then
      return nil
    end
  end
  return value
end

if obj.status == nil or obj.status.stage == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Driftline operator to register the version"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Driftline operator to observe generation " .. generation
    .. " (status is of generation " .. observed .. ")"
  return hs
end

local stage = obj.status.stage
local reject = pending("driftline.dev/reject", obj.status.lastRejectRequest, {})
if reject ~= nil then
  hs.status = "Progressing"
  hs.message = stage .. ": rejection requested (driftline.dev/reject: " .. reject .. "), not carried out yet"
  return hs
end
-- The operator ignores the value "false" in any case; without a string library these are the spellings compared.
local promote = pending("driftline.dev/promote", obj.status.lastPromoteRequest, { "false", "False", "FALSE" })
if promote ~= nil then
  hs.status = "Progressing"
  hs.message = stage .. ": promotion requested (driftline.dev/promote: " .. promote .. "), not carried out yet"
  return hs
end

-- Rejected (failed its gates, or rejected by request) and RolledBack (taken out of service): Stalled=True.
if holds("Stalled") then
  hs.status = "Degraded"
  hs.message = stage .. ": " .. describe(condition("Stalled"))
  return hs
end

-- Candidate, Production and Archived are all sound registry states: Ready=True.
local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = stage .. ": " .. describe(ready)
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = stage .. ": " .. describe(ready)
else
  hs.message = stage
end
return hs
