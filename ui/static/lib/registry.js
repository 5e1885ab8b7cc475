// Actions the views offer to the keyboard (ui/page.py KEYS maps a key to an action name):
// the run view offers step / run / stop, the scrub view t-10 / t+10, the page presenter.

const actions = new Map();

/** Offer `action` (a function); it counts only while `element` is on screen. */
export function offer(name, element, action) {
  actions.set(name, {element, action});
}

/** Do the action `name` if a view on screen offers it; true when done. */
export function act(name) {
  const entry = actions.get(name);
  if (!entry || (entry.element && entry.element.offsetParent === null)) return false;
  entry.action();
  return true;
}
