// Actions the views offer to the keyboard (ui/page.py KEYS maps a key to an action name):
// the run views offer step / run / stop (the VDM tab's and the 2-D playground's), the scrub view
// t-10 / t+10, the page presenter. Several views may offer one action: the one on screen acts.

const actions = new Map();         // name -> [{element, action}, ...]

/** Offer `action` (a function); it counts only while `element` is on screen (null: always). */
export function offer(name, element, action) {
  const offers = actions.get(name) ?? [];
  actions.set(name, [...offers.filter((o) => o.element !== element), {element, action}]);
}

/** Do the action `name` of a view on screen that offers it; true when done. */
export function act(name) {
  for (const entry of actions.get(name) ?? []) {
    if (entry.element && entry.element.offsetParent === null) continue;
    entry.action();
    return true;
  }
  return false;
}
