-- Argo CD health check for driftline.dev InferenceService (mapping and reasons: docs/gitops.md).
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

-- A rollback asked for through the annotation and not carried out yet (status records the token it last carried
-- out). Annotations do not move metadata.generation, so this is the only sign of it.
local annotations = obj.metadata.annotations
local token = annotations ~= nil and annotations["driftline.dev/rollback"] or nil
if token ~= nil and token ~= "" and token ~= obj.status.lastRollbackRequest then
  hs.status = "Progressing"
  hs.message = "Rollback requested (driftline.dev/rollback: " .. token .. "), not carried out yet"
  return hs
end

-- The spec cannot be served as asked: a missing or rolled-back pin, a rollout past its deadline with nothing to
-- roll back to, an invalid spec, a conflicting child object.
if holds("Stalled") then
  hs.status = "Degraded"
  hs.message = describe(condition("Stalled"))
  return hs
end

-- Serving, but not what the spec asks for, or drift cannot be read (consecutiveErrorLimit).
if holds("Degraded") then
  hs.status = "Degraded"
  hs.message = describe(condition("Degraded"))
  return hs
end

-- A roll forward, a canary, replicas coming up, or waiting for a Production version. A rollout started by drift
-- (a retrained version) shows as Progressing until it ends.
if holds("Progressing") or holds("Reconciling") then
  -- Ready=False names what is under way; otherwise Reconciling (or Progressing) does.
  local c = condition("Ready")
  if c == nil or c.status == "True" then
    if holds("Reconciling") then
      c = condition("Reconciling")
    else
      c = condition("Progressing")
    end
  end
  hs.status = "Progressing"
  hs.message = describe(c)
  if obj.status.canaryVersion ~= nil and obj.status.canaryWeight ~= nil then
    hs.message = hs.message .. " (canary weight " .. obj.status.canaryWeight .. "%)"
  end
  return hs
end

-- Live inputs drift beyond the threshold: the model serves, but on data unlike what it was trained on.
if holds("Drifted") then
  hs.status = "Degraded"
  hs.message = describe(condition("Drifted"))
  local drift = obj.status.drift
  if drift ~= nil and drift.lastAction == "Retrain" and drift.lastRetrainJob ~= nil then
    hs.message = hs.message .. "; last retrain: TrainingJob " .. drift.lastRetrainJob
  end
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Driftline operator to report status"
end
return hs
