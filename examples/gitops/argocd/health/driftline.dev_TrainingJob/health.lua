-- Argo CD health check for driftline.dev TrainingJob (mapping and reasons: docs/gitops.md).
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

if obj.status == nil or obj.status.conditions == nil or #obj.status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the Driftline operator to report status"
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

local ready = condition("Ready")

if holds("Stalled") then
  hs.status = "Degraded"
  hs.message = describe(condition("Stalled"))
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

-- A suspended Job is neither progressing nor failed: Ready=False, Reconciling=False, Stalled=False.
if ready ~= nil and ready.reason == "JobSuspended" then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if holds("Reconciling") then
  hs.message = describe(condition("Reconciling"))
elseif ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Driftline operator to report status"
end
return hs
