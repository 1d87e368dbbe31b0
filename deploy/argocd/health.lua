-- Argo CD health of a lucid.dev RecordingSession (argocd-cm key
-- resource.customizations.health.lucid.dev_RecordingSession).
--
--   no status or phase yet            Progressing  (the operator has not reported)
--   Failed                            Degraded
--   Degraded condition True           Degraded     (unless Completed: a finished
--                                                   recording is judged by its outcome;
--                                                   the recorder's problems, and a spec the
--                                                   cluster refuses: PodRejected,
--                                                   SpoolTooSmall)
--   Pending, Connecting, Stopping     Progressing
--   Recording                         Healthy
--   Completed                         Healthy      (the recording ended and is stored; a
--                                                   session is a one-shot job, not Suspended)
--   any other phase                   Unknown
--
-- The message is the Ready condition's, so the Argo CD UI says what the session waits for
-- (a missing Secret, a retry, the target not answering).

local function condition(status, wanted)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local hs = {}
local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the session"
  return hs
end

local phase = status.phase
local ready = condition(status, "Ready")
local degraded = condition(status, "Degraded")

if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message_of(ready, "The recording failed")
  return hs
end

if phase == "Completed" then
  hs.status = "Healthy"
  hs.message = message_of(ready, "The recording completed")
  return hs
end

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = message_of(degraded, "The recorder reports a problem")
  return hs
end

if phase == "Recording" then
  hs.status = "Healthy"
  hs.message = message_of(ready, "Recording")
  return hs
end

if phase == "Pending" or phase == "Connecting" or phase == "Stopping" then
  hs.status = "Progressing"
  hs.message = message_of(ready, phase)
  return hs
end

hs.status = "Unknown"
hs.message = "Unrecognised phase " .. tostring(phase) .. ": update the health check"
return hs
